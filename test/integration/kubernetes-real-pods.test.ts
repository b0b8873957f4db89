import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import type { KubeConfig } from '@kubernetes/client-node';
import { CoreV1Api } from '@kubernetes/client-node';
import { realActivityDeps } from '../../activities';
import { kubernetesClients } from '../../activities/kubernetes/api';
import { isReady, isTerminating, labelSelector } from '../../activities/kubernetes/objects';
import type { DemoApp } from '../../infra/kubernetes/demo-app-objects';
import { deployDemoApp, demoServiceSelector } from '../../infra/kubernetes/demo-app-objects';
import type { LoadStats } from '../../infra/load';
import { startLoad } from '../../infra/load';
import type { RolloutSpecInput } from '../../spec';
import { parseRolloutSpec } from '../../spec';
import { startTestCluster } from '../helpers/kubernetes';
import { runRollout } from '../helpers/rollout';
import type { TestTemporal } from '../helpers/temporal';

let kc: KubeConfig;
let temporal: TestTemporal;
let stop: (() => Promise<void>) | undefined;
before(async () => {
  ({ kc, temporal, stop } = await startTestCluster('baton-real-pods', { realNode: true }));
});
after(() => stop?.());

const replicas = 4;
/** Through the Service's ClusterIP, as clients inside a cluster send it: kube-proxy picks a pod per connection. */
const ratePerSecond = 100;
const deps = () => ({ ...realActivityDeps(), kubernetes: () => kubernetesClients(kc) });

let namespaces = 0;
/** A namespace of its own with the demo app at v1 on the real node, behind Service `web`. */
const freshApp = () => deployDemoApp(kc, { namespace: `real-${++namespaces}`, replicas, version: 'v1' });

function spec(app: DemoApp, version: string, strategy: RolloutSpecInput['strategy'], readyTimeout = '60s') {
  return parseRolloutSpec({
    target: {
      kind: 'kubernetes',
      name: `web-${app.namespace}`,
      namespace: app.namespace,
      deployment: app.deployment,
      container: app.container,
      image: app.image,
      service: app.service,
      readyTimeout,
    },
    version,
    strategy,
  });
}

/** Runs the rollout while requests flow through the Service, and returns its result and what the clients saw. */
async function underLoad(app: DemoApp, rollout: ReturnType<typeof spec>) {
  const load = startLoad({ url: app.url, ratePerSecond });
  // Clients are already connected, to every pod, when the rollout starts.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  try {
    const result = await runRollout(temporal, deps(), rollout);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    return { result, load: await load.stop() };
  } catch (error) {
    await load.stop();
    throw error;
  }
}

/** The version each Ready pod behind the Service reports at its own address, by pod. */
async function servingVersions(app: DemoApp): Promise<string[]> {
  const pods = await kc.makeApiClient(CoreV1Api).listNamespacedPod({
    namespace: app.namespace,
    labelSelector: labelSelector(demoServiceSelector),
  });
  const serving = pods.items.filter((pod) => isReady(pod) && !isTerminating(pod));
  return Promise.all(
    serving.map(async (pod) => {
      const answer = await fetch(`http://${pod.status?.podIP}:8080/healthz`);
      return healthAnswer.parse(await answer.json()).version;
    }),
  );
}
const healthAnswer = z.object({ version: z.string() });

const failures = (stats: LoadStats) =>
  `${stats.failed} of ${stats.sent} failed: ${JSON.stringify(stats.errors)}`;

describe('Kubernetes rollouts of real pods, under load through the Service', () => {
  for (const [name, strategy] of [
    ['rolling', { type: 'rolling' }],
    [
      'canary',
      { type: 'canary', steps: [{ setWeight: 25 }, { pause: { duration: '2s' } }, { setWeight: 50 }] },
    ],
    ['blue-green', { type: 'blue-green' }],
    ['surge', { type: 'surge' }],
  ] as const satisfies ReadonlyArray<readonly [string, RolloutSpecInput['strategy']]>) {
    it(`${name}: every pod on v2, no request failed`, async () => {
      const app = await freshApp();
      const { result, load } = await underLoad(app, spec(app, 'v2', strategy));
      assert.equal(result.phase, 'succeeded', result.reason);
      assert.equal(load.failed, 0, failures(load));
      assert.ok(load.sent > 500, `only ${load.sent} requests were sent`);
      assert.ok((load.byVersion.v2 ?? 0) > 0, `no request reached v2: ${JSON.stringify(load.byVersion)}`);
      assert.deepEqual(await servingVersions(app), Array<string>(replicas).fill('v2'));
    });
  }

  it('recreate: every pod on v2, and requests fail while no pod runs, by design', async () => {
    const app = await freshApp();
    const { result, load } = await underLoad(app, spec(app, 'v2', { type: 'recreate' }));
    assert.equal(result.phase, 'succeeded', result.reason);
    assert.ok(load.failed > 0, `recreate leaves a moment with no pod, yet nothing failed: ${failures(load)}`);
    assert.deepEqual(await servingVersions(app), Array<string>(replicas).fill('v2'));
  });

  it('a version whose readiness probe fails is rolled back, every old pod serving, no request failed', async () => {
    const app = await freshApp();
    const { result, load } = await underLoad(app, spec(app, 'broken', { type: 'rolling' }, '15s'));
    assert.equal(result.phase, 'rolled-back', result.reason);
    assert.match(result.reason ?? '', /not Ready|available/);
    assert.equal(load.failed, 0, failures(load));
    assert.deepEqual(load.byVersion.broken, undefined, 'no request reached a pod that never became Ready');
    assert.deepEqual(await servingVersions(app), Array<string>(replicas).fill('v1'));
  });
});
