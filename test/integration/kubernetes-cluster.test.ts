import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { AppsV1Api, CoreV1Api, KubeConfig, VersionApi } from '@kubernetes/client-node';
import type { LocalCluster } from '../../infra/kubernetes-cluster';
import { startLocalCluster } from '../../infra/kubernetes-cluster';
import { delay } from '../../infra/processes';

let cluster: LocalCluster;
let dir: string;
let kc: KubeConfig;
before(async () => {
  const root = process.env.BATON_TEST_FLEETS_DIR ?? tmpdir();
  await mkdir(root, { recursive: true });
  dir = await mkdtemp(join(root, 'cluster-'));
  cluster = await startLocalCluster({ dir, name: 'baton-test' });
  kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfig);
});
after(async () => cluster?.stop());

const controlPlaneProcesses = () => {
  try {
    return execFileSync('pgrep', ['-f', dir]).toString().trim().split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
};

describe('the local Kubernetes control plane (built from the Go module proxy, kwok nodes)', () => {
  it('serves the pinned Kubernetes version', async () => {
    const version = await kc.makeApiClient(VersionApi).getCode();
    assert.equal(version.gitVersion, 'v1.36.3');
  });

  it('has a Ready kwok node', async () => {
    const node = await kc.makeApiClient(CoreV1Api).readNode({ name: cluster.nodes[0] ?? '' });
    assert.equal(node.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
  });

  it('schedules a Deployment onto the kwok node and reports its pods Ready, as the real controllers do', async () => {
    const apps = kc.makeApiClient(AppsV1Api);
    const labels = { app: 'smoke' };
    await apps.createNamespacedDeployment({
      namespace: 'default',
      body: {
        metadata: { name: 'smoke', labels },
        spec: {
          replicas: 3,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: { containers: [{ name: 'app', image: 'registry.local/smoke:v1' }] },
          },
        },
      },
    });
    const deadline = Date.now() + 60_000;
    let ready = 0;
    while (ready < 3) {
      assert.ok(Date.now() < deadline, `only ${ready} of 3 replicas became ready`);
      await delay(250);
      ready =
        (await apps.readNamespacedDeployment({ name: 'smoke', namespace: 'default' })).status
          ?.readyReplicas ?? 0;
    }
    const pods = await kc
      .makeApiClient(CoreV1Api)
      .listNamespacedPod({ namespace: 'default', labelSelector: 'app=smoke' });
    assert.equal(pods.items.length, 3);
    for (const pod of pods.items) {
      assert.equal(pod.spec?.nodeName, cluster.nodes[0]);
      assert.equal(pod.status?.phase, 'Running');
    }
  });

  it('keeps a pod Pending for the ready delay, then Running and Ready', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const created = Date.now();
    await core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'delayed' },
        spec: { containers: [{ name: 'app', image: 'registry.local/smoke:v1' }] },
      },
    });
    const seen = await waitForPod(core, 'delayed', (pod) => readyCondition(pod) === 'True');
    assert.equal(seen.status?.phase, 'Running');
    assert.ok(
      Date.now() - created >= cluster.pods.readyDelayMs,
      `Ready after ${Date.now() - created} ms, before the ${cluster.pods.readyDelayMs} ms delay`,
    );
  });

  it(`leaves a pod of the broken tag Running but never Ready, and deletes it when asked`, async () => {
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'broken' },
        spec: {
          containers: [
            { name: 'app', image: `registry.local/smoke:${cluster.pods.brokenTag}` },
            { name: 'sidecar', image: 'registry.local/proxy:v1' },
          ],
        },
      },
    });
    const running = await waitForPod(core, 'broken', (pod) => pod.status?.phase === 'Running');
    assert.equal(readyCondition(running), 'False');
    // Long enough for a wrongly matching pod-ready stage to have made it Ready.
    await delay(cluster.pods.readyDelayMs + 2_000);
    const later = await core.readNamespacedPod({ name: 'broken', namespace: 'default' });
    assert.equal(readyCondition(later), 'False');
    assert.equal(
      later.status?.containerStatuses?.every((c) => c.ready === false),
      true,
    );

    await core.deleteNamespacedPod({ name: 'broken', namespace: 'default' });
    const deadline = Date.now() + 30_000;
    for (;;) {
      const left = await core.listNamespacedPod({
        namespace: 'default',
        fieldSelector: 'metadata.name=broken',
      });
      if (left.items.length === 0) break;
      assert.ok(Date.now() < deadline, 'the deleted pod is still there');
      await delay(200);
    }
  });

  it('stops every control plane process it started', async () => {
    assert.ok(
      controlPlaneProcesses() >= 4,
      'etcd, apiserver, controller-manager, scheduler and kwok are running',
    );
    await cluster.stop();
    const deadline = Date.now() + 15_000;
    while (controlPlaneProcesses() > 0) {
      assert.ok(Date.now() < deadline, `${controlPlaneProcesses()} processes still running`);
      await delay(200);
    }
  });
});

describe('a kwok controller that exits while the control plane starts', () => {
  it('is started again, and makes the node Ready', async () => {
    const root = process.env.BATON_TEST_FLEETS_DIR ?? tmpdir();
    const killedDir = await mkdtemp(join(root, 'cluster-'));
    let killed = 0;
    const restarted = await startLocalCluster({
      dir: killedDir,
      name: 'baton-kwok-exits',
      // As kwok does on its own when the apiserver has not answered its first 31 s of lists.
      afterControlPlaneStarts: async (clusterDir) => {
        killed = Number(await readFile(join(clusterDir, 'pids', 'kwok-controller.pid'), 'utf8'));
        process.kill(killed, 'SIGKILL');
      },
    });
    try {
      assert.ok(killed > 0);
      const restartedKc = new KubeConfig();
      restartedKc.loadFromFile(restarted.kubeconfig);
      const node = await restartedKc.makeApiClient(CoreV1Api).readNode({ name: restarted.nodes[0] ?? '' });
      assert.equal(node.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
      const kwokPid = Number(
        await readFile(
          join(killedDir, 'kwok', 'clusters', 'baton-kwok-exits', 'pids', 'kwok-controller.pid'),
          'utf8',
        ),
      );
      assert.notEqual(kwokPid, killed, 'the kwok that runs is a new one');
    } finally {
      await restarted.stop();
    }
  });
});

const readyCondition = (pod: V1Pod) => pod.status?.conditions?.find((c) => c.type === 'Ready')?.status;

async function waitForPod(core: CoreV1Api, name: string, until: (pod: V1Pod) => boolean): Promise<V1Pod> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const pod = await core.readNamespacedPod({ name, namespace: 'default' });
    if (until(pod)) return pod;
    assert.ok(Date.now() < deadline, `pod ${name} stayed ${JSON.stringify(pod.status?.phase)}`);
    await delay(100);
  }
}
