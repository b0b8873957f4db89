import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { KubernetesBinaries } from './components';
import { ensureKubernetesBinaries, kubernetesVersions } from './components';
import type { PodBehaviour } from './kubernetes/kwok-stages';
import { kwokStagesConfig } from './kubernetes/kwok-stages';
import type { RealNode } from './kubernetes/real-node';
import { startRealNode, stopNodeAt } from './kubernetes/real-node';
import { cacheRoot } from './cache';
import { withFileLock } from './lock';
import { delay, runsWith } from './processes';
import { runCommand } from './run-command';

export interface LocalCluster {
  readonly name: string;
  /** A kubeconfig for the cluster's admin, to load with KubeConfig.loadFromFile or pass as KUBECONFIG. */
  readonly kubeconfig: string;
  /** The fake nodes kwok runs pods on. */
  readonly nodes: readonly string[];
  /** The real node, when asked for: kubelet runs its pods in containers, and kube-proxy routes Services to them. */
  readonly realNode?: string;
  /** How kwok treats pods here: the delay before Ready, and the image tag that never becomes Ready. */
  readonly pods: PodBehaviour;
  stop(): Promise<void>;
}

/** kwokctl keeps each cluster's state (certificates, pids, logs) under KWOK_WORKDIR. */
function kwokEnv(binaries: KubernetesBinaries, workdir: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    KWOK_WORKDIR: workdir,
    KWOK_KUBE_VERSION: kubernetesVersions.kubernetes,
    // kwokctl calls kubectl from PATH for some steps; give it ours rather than let it look for (or fetch) one.
    PATH: `${dirname(binaries.kubectl)}:${process.env.PATH ?? ''}`,
  };
}

/**
 * Starts a real Kubernetes control plane on this machine: etcd, kube-apiserver, kube-controller-manager and
 * kube-scheduler built from the Go module proxy, started by kwokctl's binary runtime with every binary given
 * (so it downloads nothing), and kwok's controller, which makes pods on its fake nodes Running and Ready.
 */
export async function startLocalCluster(options: {
  dir: string;
  name?: string;
  nodes?: number;
  pods?: Partial<PodBehaviour>;
  /** Also join a real node (one per machine; a second cluster asking for one waits for it). */
  realNode?: boolean;
  /** Runs once kwokctl has started the control plane, before the nodes are made: for tests that break it. */
  afterControlPlaneStarts?: (kwokctlClusterDir: string) => Promise<void>;
}): Promise<LocalCluster> {
  const binaries = await ensureKubernetesBinaries();
  const name = options.name ?? 'baton';
  const workdir = join(options.dir, 'kwok');
  const kubeconfig = join(options.dir, 'kubeconfig');
  await mkdir(workdir, { recursive: true });
  const env = kwokEnv(binaries, workdir);
  const pods: PodBehaviour = { readyDelayMs: 1_000, brokenTag: 'broken', ...options.pods };
  const stagesConfig = join(options.dir, 'kwok-stages.yaml');
  await writeFile(stagesConfig, await kwokStagesConfig(binaries.kwokStages, pods));
  // kwokctl picks free ports for each component when it creates a cluster; two creations at once can pick the
  // same port, and one cluster's kwok then fails to bind. One creation at a time on this machine.
  await withFileLock(join(cacheRoot(), 'kwokctl-create.lock'), () =>
    runCommand(
      [
        binaries.kwokctl,
        '--config',
        stagesConfig,
        'create',
        'cluster',
        '--name',
        name,
        '--runtime',
        'binary',
        '--kube-apiserver-binary',
        binaries.kubeApiserver,
        '--kube-controller-manager-binary',
        binaries.kubeControllerManager,
        '--kube-scheduler-binary',
        binaries.kubeScheduler,
        '--kwok-controller-binary',
        binaries.kwok,
        '--etcd-binary',
        binaries.etcd,
        '--kubeconfig',
        kubeconfig,
        // RBAC on, as in any real cluster, so a least-privilege Role can be proven to be enough.
        '--kube-authorization',
        '--wait',
        '120s',
        '--timeout',
        '180s',
      ],
      { label: `starting Kubernetes ${kubernetesVersions.kubernetes} (kwokctl, binary runtime)`, env },
    ),
  );
  let realNode: RealNode | undefined;
  const stop = async () => {
    await realNode?.stop();
    await deleteCluster(binaries, workdir, name);
  };
  try {
    await options.afterControlPlaneStarts?.(join(workdir, 'clusters', name));
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    const core = kc.makeApiClient(CoreV1Api);
    const nodes = Array.from({ length: options.nodes ?? 1 }, (_, i) => `kwok-node-${i}`);
    for (const node of nodes) {
      await core.createNode({
        body: {
          metadata: {
            name: node,
            // kwok manages the nodes that carry this annotation, and runs their pods.
            annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
            labels: {
              'kubernetes.io/hostname': node,
              'kubernetes.io/os': 'linux',
              'kubernetes.io/arch': 'amd64',
              type: 'kwok',
            },
          },
          status: {
            allocatable: { cpu: '32', memory: '256Gi', pods: '110' },
            capacity: { cpu: '32', memory: '256Gi', pods: '110' },
          },
        },
      });
    }
    const kwokPidFile = join(workdir, 'clusters', name, 'pids', 'kwok-controller.pid');
    await waitForNodesReady(core, nodes, {
      kwokAlive: () => runsWith(kwokPid(kwokPidFile), 'kwok-controller'),
      restartKwok: async () => {
        // kwokctl takes a pid that still answers signal 0 as running, and a kwok that exited here stays a zombie
        // (nothing reaps it), so the pid file goes first.
        await rm(kwokPidFile, { force: true });
        await runCommand([binaries.kwokctl, 'start', 'cluster', '--name', name], {
          label: `starting kwok's controller again in cluster ${name}`,
          env,
        });
      },
      kwokLog: () => logTail(join(workdir, 'clusters', name, 'logs', 'kwok-controller.log')),
    });
    if (options.realNode)
      realNode = await startRealNode({ dir: join(options.dir, 'node'), kubeconfig, kubernetes: binaries });
    return { name, kubeconfig, nodes, pods, realNode: realNode?.name, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * Waits for kwok to mark each node Ready through its node-initialize stage. kwok lists nodes for about 31 s after it
 * starts and exits when the apiserver has not answered by then; kwokctl starts both at once, and on a busy machine the
 * apiserver can take longer. A kwok that has exited is started again (kwokctl starts only what is not running).
 */
async function waitForNodesReady(
  core: CoreV1Api,
  nodes: readonly string[],
  kwok: { kwokAlive(): boolean; restartKwok(): Promise<unknown>; kwokLog(): Promise<string> },
): Promise<void> {
  const deadline = Date.now() + 90_000;
  let restarts = 0;
  for (const node of nodes) {
    for (;;) {
      const status = (await core.readNode({ name: node })).status;
      if (status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) break;
      if (Date.now() > deadline)
        throw new Error(
          `kwok did not make node ${node} Ready within 90 s (kwok started again ${restarts} times); ` +
            `the end of kwok's log:\n${await kwok.kwokLog()}`,
        );
      if (!kwok.kwokAlive() && restarts < 3) {
        restarts++;
        await kwok.restartKwok();
      }
      await delay(100);
    }
  }
}

/** The pid in a kwokctl pid file, or 0 when there is none. */
function kwokPid(pidFile: string): number {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : 0;
  } catch {
    return 0;
  }
}

async function logTail(path: string, lines = 20): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch (error) {
    return `(could not read ${path}: ${(error as Error).message})`;
  }
}

async function deleteCluster(binaries: KubernetesBinaries, workdir: string, name: string): Promise<void> {
  await runCommand([binaries.kwokctl, 'delete', 'cluster', '--name', name], {
    label: `stopping Kubernetes cluster ${name}`,
    env: kwokEnv(binaries, workdir),
  });
}

/** Stops every kwokctl cluster kept under `<root>/*\/kwok`, so a crashed test leaves no control plane running. */
export async function sweepClusters(root: string): Promise<number> {
  if (!existsSync(root)) return 0;
  let swept = 0;
  for (const entry of readdirSync(root)) {
    const clusters = join(root, entry, 'kwok', 'clusters');
    if (!existsSync(clusters)) continue;
    const binaries = await ensureKubernetesBinaries();
    if (existsSync(join(root, entry, 'node', 'node.json')))
      await stopNodeAt(join(root, entry, 'node'), binaries);
    for (const name of readdirSync(clusters)) {
      await deleteCluster(binaries, join(root, entry, 'kwok'), name).catch(() => undefined);
      swept++;
    }
  }
  return swept;
}
