import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { KubeConfig } from '@kubernetes/client-node';
import { ApiException, AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import { realActivityDeps } from '../../activities';
import { kubernetesClients } from '../../activities/kubernetes/api';
import type { LocalCluster } from '../../infra/kubernetes-cluster';
import { parseRolloutSpec } from '../../spec';
import {
  applyManifests,
  deployManifests,
  seedApp,
  serviceAccountConfig,
  startTestCluster,
  waitAvailable,
} from '../helpers/kubernetes';
import { runRollout } from '../helpers/rollout';
import type { TestTemporal } from '../helpers/temporal';

let cluster: LocalCluster;
let admin: KubeConfig;
let temporal: TestTemporal;
let stop: (() => Promise<void>) | undefined;
before(async () => {
  ({ cluster, kc: admin, temporal, stop } = await startTestCluster('baton-rbac'));
});
after(() => stop?.());

async function statusOf(call: () => Promise<unknown>): Promise<number> {
  try {
    await call();
    return 200;
  } catch (error) {
    if (error instanceof ApiException) return error.code;
    throw error;
  }
}

describe('deploy/: the worker in a cluster with a least-privilege Role', () => {
  let worker: KubeConfig;

  it('runs the worker Deployment as written in deploy/worker.yaml', async () => {
    await admin.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: 'baton' } } });
    await applyManifests(admin, deployManifests('worker.yaml'));
    // kwok runs the pods: this proves the API server accepts the manifest and the Deployment becomes available.
    await waitAvailable(admin, 'baton', 'baton-worker', 2);
    const pod = (
      await admin
        .makeApiClient(AppsV1Api)
        .readNamespacedDeployment({ namespace: 'baton', name: 'baton-worker' })
    ).spec?.template.spec;
    assert.equal(pod?.serviceAccountName, 'baton-worker');
    assert.equal(pod?.securityContext?.runAsNonRoot, true);
  });

  it('lets the worker roll out with only the Role of deploy/rbac.yaml, and roll back', async () => {
    await seedApp(admin, 'shop', { replicas: 4, image: 'registry.local/web' });
    await applyManifests(admin, deployManifests('rbac.yaml'), 'shop');
    worker = await serviceAccountConfig(admin, 'baton', 'baton-worker');
    const deps = { ...realActivityDeps(), kubernetes: () => kubernetesClients(worker) };
    const spec = (version: string) =>
      parseRolloutSpec({
        target: {
          kind: 'kubernetes',
          name: 'shop-web',
          namespace: 'shop',
          deployment: 'web',
          container: 'app',
          image: 'registry.local/web',
          service: 'web',
          readyTimeout: '5s',
        },
        version,
      });
    const rolled = await runRollout(temporal, deps, spec('v2'));
    assert.equal(rolled.phase, 'succeeded', rolled.reason);
    const again = await runRollout(temporal, deps, spec('v3'));
    assert.equal(again.phase, 'succeeded', again.reason);
    const back = await runRollout(temporal, deps, spec(cluster.pods.brokenTag));
    assert.equal(back.phase, 'rolled-back', back.reason);
    assert.match(back.reason ?? '', /not Ready/);
  });

  it('forbids the worker what Baton does not need: Secrets, other namespaces, cluster objects', async () => {
    const core = worker.makeApiClient(CoreV1Api);
    const apps = worker.makeApiClient(AppsV1Api);
    assert.equal(await statusOf(() => core.listNamespacedSecret({ namespace: 'shop' })), 403);
    assert.equal(await statusOf(() => core.listNamespacedSecret({ namespace: 'baton' })), 403);
    assert.equal(await statusOf(() => apps.listNamespacedDeployment({ namespace: 'default' })), 403);
    assert.equal(await statusOf(() => apps.listNamespacedDeployment({ namespace: 'baton' })), 403);
    assert.equal(await statusOf(() => core.listNode()), 403);
    assert.equal(await statusOf(() => core.deleteNamespacedService({ namespace: 'shop', name: 'web' })), 403);
    assert.equal(await statusOf(() => core.deleteNamespacedPod({ namespace: 'shop', name: 'any' })), 403);
    // ...while what it needs answers.
    assert.equal(await statusOf(() => apps.listNamespacedDeployment({ namespace: 'shop' })), 200);
  });
});
