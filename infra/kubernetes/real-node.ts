import { spawn } from 'node:child_process';
import { existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { z } from 'zod';
import { cacheRoot, say } from '../cache';
import { findProgram } from '../debian';
import type { KubernetesBinaries } from '../components';
import { tryFileLock } from '../lock';
import { delay, runsWith, sendSignal, signalReaches } from '../processes';
import { runCommand } from '../run-command';
import { ensureDemoImages, pauseImage } from './demo-image';
import type { NodeBinaries } from './node-components';
import { ensureNodeBinaries } from './node-components';

export interface RealNode {
  readonly name: string;
  /** The pods' addresses: the CNI bridge's subnet. */
  readonly podCidr: string;
  stop(): Promise<void>;
}

/**
 * One real node per machine: kube-proxy owns the host's KUBE-* iptables chains, the bridge has one name, and
 * kubelet and kube-proxy listen on their usual ports. The lock file names the node's folder, so the next holder
 * can clear what a crashed one left running.
 */
const lockFile = () => join(cacheRoot(), 'real-node.lock');
const ownerFile = () => join(cacheRoot(), 'real-node.dir');
const bridge = 'baton0';
const podCidr = '10.244.0.0/24';
// containerd's socket path must fit a sockaddr_un (108 bytes), which a test's nested temp folder may not.
const socketDir = (dir: string) =>
  join('/run', 'baton-node', Buffer.from(dir).toString('base64url').slice(-24));
// The runc shim keeps its state under /run/containerd/runc/<namespace>, whatever containerd's own state folder.
const runcRoot = '/run/containerd/runc/k8s.io';

const nodeState = z.object({
  dir: z.string(),
  pids: z.record(z.string(), z.number().int()),
});

/** The address other machines would reach this one at: kubelet refuses a loopback node IP. */
function hostAddress(): string {
  for (const [name, addresses] of Object.entries(networkInterfaces())) {
    if (name === bridge || name.startsWith('veth')) continue;
    const address = addresses?.find((a) => a.family === 'IPv4' && !a.internal);
    if (address) return address.address;
  }
  throw new Error('a real node needs a non-loopback IPv4 address for kubelet; this machine has none');
}

async function waitFor(
  what: string,
  ready: () => Promise<boolean>,
  timeoutMs: number,
  log: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ready().catch(() => false))) {
    if (Date.now() > deadline) {
      const tail = existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-15).join('\n') : '';
      throw new Error(`${what} within ${timeoutMs / 1000} s; the end of ${log}:\n${tail}`);
    }
    await delay(200);
  }
}

function containerdConfig(dir: string, socket: string, binaries: NodeBinaries): string {
  return `version = 3
root = "${join(dir, 'containerd', 'root')}"
state = "${join(dir, 'containerd', 'state')}"
[grpc]
  address = "${socket}"
[ttrpc]
  address = "${socket}.ttrpc"
[plugins.'io.containerd.cri.v1.runtime']
  enable_selinux = false
  # The machine is a container: lowering a process's oom_score_adj below its own is refused here.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = 'runc'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = '${binaries.runc}'
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['${binaries.cniBinDir}']
    conf_dir = '${join(dir, 'cni', 'conf')}'
[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '${pauseImage}'
`;
}

function cniConfig(dir: string): string {
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: 'baton',
    plugins: [
      {
        type: 'bridge',
        bridge,
        isGateway: true,
        ipMasq: true,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: podCidr }]],
          routes: [{ dst: '0.0.0.0/0' }],
          dataDir: join(dir, 'cni', 'ipam'),
        },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  });
}

function kubeletConfig(dir: string, socket: string): string {
  return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# The machine runs cgroup v1, which kubelet 1.36 refuses unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
containerRuntimeEndpoint: unix://${socket}
failSwapOn: false
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
address: 127.0.0.1
readOnlyPort: 0
podLogsDir: ${join(dir, 'pod-logs')}
volumePluginDir: ${join(dir, 'volume-plugins')}
resolvConf: ""
# A test machine's disk is often past kubelet's eviction and image GC thresholds; nothing here may be evicted.
evictionHard: {}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
localStorageCapacityIsolation: false
makeIPTablesUtilChains: false
serializeImagePulls: false
nodeStatusReportFrequency: 10s
`;
}

function kubeProxyConfig(kubeconfig: string, nodeName: string): string {
  return `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: ${kubeconfig}}
clusterCIDR: ${podCidr}
hostnameOverride: ${nodeName}
# Leave the machine's conntrack table size alone.
conntrack: {maxPerCore: 0}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
# Program each endpoint change at once: the time a removed pod keeps receiving traffic is what Baton measures.
iptables: {minSyncPeriod: 0s, syncPeriod: 30s}
`;
}

/**
 * Starts a real node on this machine and joins it to the cluster of `kubeconfig`: containerd running pods with
 * Debian's runc on a CNI bridge, kubelet, and kube-proxy programming Services with iptables. The demo app's images
 * and the pause image are imported first, so the node pulls nothing. One node per machine: a second start waits
 * for the first to stop, up to `waitMs`.
 */
export async function startRealNode(options: {
  dir: string;
  kubeconfig: string;
  kubernetes: KubernetesBinaries;
  name?: string;
  waitMs?: number;
}): Promise<RealNode> {
  const name = options.name ?? 'baton-node-0';
  const binaries = await ensureNodeBinaries();
  const images = await ensureDemoImages(binaries.pause);
  const release = await takeNodeLock(options.waitMs ?? 600_000);
  const dir = options.dir;
  const pids: Record<string, number> = {};
  const saveState = () => writeFile(join(dir, 'node.json'), JSON.stringify({ dir, pids }));
  try {
    await writeFile(ownerFile(), dir);
    for (const sub of ['containerd', 'cni/conf', 'kubelet', 'logs', 'pod-logs'])
      await mkdir(join(dir, sub), { recursive: true });
    const socketFolder = socketDir(dir);
    await mkdir(socketFolder, { recursive: true });
    const socket = join(socketFolder, 'containerd.sock');
    await writeFile(join(dir, 'containerd', 'config.toml'), containerdConfig(dir, socket, binaries));
    await writeFile(join(dir, 'cni', 'conf', '10-baton.conflist'), cniConfig(dir));
    await writeFile(join(dir, 'kubelet', 'config.yaml'), kubeletConfig(dir, socket));
    await writeFile(join(dir, 'kube-proxy.yaml'), kubeProxyConfig(options.kubeconfig, name));

    const daemon = async (label: string, argv: string[], env: NodeJS.ProcessEnv = process.env) => {
      const log = join(dir, 'logs', `${label}.log`);
      const child = spawn(argv[0] ?? '', argv.slice(1), {
        detached: true,
        stdio: ['ignore', openSync(log, 'a'), openSync(log, 'a')],
        env,
      });
      child.unref();
      pids[label] = child.pid ?? 0;
      await saveState();
      return log;
    };

    say(`starting a real node (containerd ${binaries.containerd.split('/').at(-3)}, kubelet, kube-proxy)…`);
    const containerdLog = await daemon(
      'containerd',
      [binaries.containerd, '--config', join(dir, 'containerd', 'config.toml')],
      { ...process.env, PATH: `${binaries.containerdBinDir}:${process.env.PATH ?? ''}` },
    );
    const ctr = [binaries.ctr, '--address', socket, '--namespace', 'k8s.io'];
    await waitFor(
      'containerd did not answer',
      async () => (await runCommand([...ctr, 'version'], { label: 'asking containerd', quiet: true }), true),
      30_000,
      containerdLog,
    );
    for (const archive of [images.pause, images.demo])
      await runCommand([...ctr, 'images', 'import', archive], { label: `importing ${archive}`, quiet: true });

    const kubeletLog = await daemon('kubelet', [
      options.kubernetes.kubelet,
      '--config',
      join(dir, 'kubelet', 'config.yaml'),
      '--kubeconfig',
      options.kubeconfig,
      '--root-dir',
      join(dir, 'kubelet', 'root'),
      '--cert-dir',
      join(dir, 'kubelet', 'pki'),
      '--hostname-override',
      name,
      '--node-ip',
      hostAddress(),
      '--node-labels',
      'type=real',
    ]);
    const kc = new KubeConfig();
    kc.loadFromFile(options.kubeconfig);
    const core = kc.makeApiClient(CoreV1Api);
    await waitFor(
      `node ${name} did not become Ready`,
      async () =>
        (await core.readNode({ name })).status?.conditions?.some(
          (c) => c.type === 'Ready' && c.status === 'True',
        ) ?? false,
      120_000,
      kubeletLog,
    );
    const proxyLog = await daemon('kube-proxy', [
      options.kubernetes.kubeProxy,
      '--config',
      join(dir, 'kube-proxy.yaml'),
    ]);
    await waitFor(
      'kube-proxy did not report healthy',
      async () => (await fetch('http://127.0.0.1:10256/healthz')).ok,
      60_000,
      proxyLog,
    );
    say(`real node ${name} is Ready`);
  } catch (error) {
    await stopNodeAt(dir, options.kubernetes);
    await release();
    throw error;
  }
  let stopped: Promise<void> | undefined;
  return {
    name,
    podCidr,
    stop: () =>
      (stopped ??= (async () => {
        await stopNodeAt(dir, options.kubernetes);
        await release();
      })()),
  };
}

async function takeNodeLock(waitMs: number): Promise<() => Promise<void>> {
  const deadline = Date.now() + waitMs;
  for (let said = false; ; said = true) {
    const release = await tryFileLock(lockFile());
    if (release) {
      // The last holder died without stopping its node: clear what it left before starting this one.
      const left = await readFile(ownerFile(), 'utf8').catch(() => '');
      if (left !== '' && existsSync(join(left, 'node.json'))) await stopNodeAt(left);
      return release;
    }
    if (Date.now() > deadline)
      throw new Error(`another process has kept this machine's real Kubernetes node for ${waitMs / 1000} s`);
    if (!said) say("waiting for this machine's real Kubernetes node, which another process is using…");
    await delay(1_000);
  }
}

/**
 * Stops a node started at `dir`, or what is left of one: kube-proxy's rules cleared, kubelet stopped, every
 * container killed and deleted, containerd stopped, its mounts undone, the bridge removed.
 */
export async function stopNodeAt(dir: string, kubernetes?: KubernetesBinaries): Promise<void> {
  const text = await readFile(join(dir, 'node.json'), 'utf8').catch(() => undefined);
  const state = text === undefined ? undefined : nodeState.parse(JSON.parse(text));
  const stopPid = async (label: string) => {
    const pid = state?.pids[label];
    if (pid === undefined || !runsWith(pid, dir)) return;
    sendSignal(pid, 'SIGTERM');
    const killAt = Date.now() + 10_000;
    while (signalReaches(pid) && runsWith(pid, dir)) {
      if (Date.now() > killAt) sendSignal(pid, 'SIGKILL');
      await delay(50);
    }
  };
  await stopPid('kube-proxy');
  if (kubernetes)
    await runCommand([kubernetes.kubeProxy, '--cleanup'], {
      label: 'clearing kube-proxy rules',
      quiet: true,
    }).catch(() => undefined);
  await stopPid('kubelet');
  // runc keeps one state folder per container under its root; with one node per machine, each is this node's.
  // Found, not ensured: stopping what is left must not install anything.
  const runc = findProgram('runc') ?? 'runc';
  const listed = await runCommand([runc, '--root', runcRoot, 'list', '-q'], {
    label: 'listing containers',
    quiet: true,
  }).catch(() => '');
  for (const id of listed.split('\n').filter((line) => line.trim() !== ''))
    await runCommand([runc, '--root', runcRoot, 'delete', '--force', id.trim()], {
      label: `deleting container ${id}`,
      quiet: true,
    }).catch(() => undefined);
  await stopPid('containerd');
  // The shims outlive containerd; each names this node's socket on its command line.
  for (const entry of existsSync('/proc') ? readdirSync('/proc') : [])
    if (/^\d+$/.test(entry) && runsWith(Number(entry), socketDir(dir))) sendSignal(Number(entry), 'SIGKILL');
  // kubelet's own chain, which blocks outside packets to 127.0.0.0/8; kube-proxy's cleanup leaves it.
  for (const tables of ['iptables', 'ip6tables'])
    for (const args of [
      ['-D', 'INPUT', '-j', 'KUBE-FIREWALL'],
      ['-D', 'OUTPUT', '-j', 'KUBE-FIREWALL'],
      ['-F', 'KUBE-FIREWALL'],
      ['-X', 'KUBE-FIREWALL'],
    ])
      await runCommand([tables, ...args], { label: `${tables} ${args.join(' ')}`, quiet: true }).catch(
        () => undefined,
      );
  await unmountUnder(dir);
  await runCommand(['ip', 'link', 'delete', bridge], { label: 'removing the pod bridge', quiet: true }).catch(
    () => undefined,
  );
  await rm(socketDir(dir), { recursive: true, force: true });
  await rm(join(dir, 'node.json'), { force: true });
}

/** Unmounts every mount under `dir`, deepest first: overlay roots, netns files, a pod's token volume. */
async function unmountUnder(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((point) => point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const point of mounts)
    await runCommand(['umount', '-l', point], { label: `unmounting ${point}`, quiet: true }).catch(
      () => undefined,
    );
}
