import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { KubeConfig } from '@kubernetes/client-node';
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import { realActivityDeps } from '../../activities';
import { kubernetesClients } from '../../activities/kubernetes/api';
import type { DemoApp } from '../../infra/kubernetes/demo-app-objects';
import {
  demoAppMetrics,
  demoAppTarget,
  deployDemoApp,
  servingVersions,
} from '../../infra/kubernetes/demo-app-objects';
import type { LoadStats } from '../../infra/load';
import { startLoad } from '../../infra/load';
import type { RolloutSpecInput } from '../../spec';
import { parseRolloutSpec } from '../../spec';
import { httpVerification } from '../../spec/rollout';
import type { rolloutWorkflow } from '../../workflows';
import { statusQuery } from '../../workflows/messages';
import {
  applyManifests,
  deployManifests,
  serviceAccountConfig,
  startTestCluster,
} from '../helpers/kubernetes';
import { runRollout, startRolloutInProcess, until } from '../helpers/rollout';
import type { TestTemporal } from '../helpers/temporal';
import { uniqueTaskQueue } from '../helpers/temporal';
import { startWorkerProcess } from '../helpers/worker';

let kc: KubeConfig;
let temporal: TestTemporal;
let stop: (() => Promise<void>) | undefined;
/** The worker acts as its ServiceAccount of deploy/, with only the Role of deploy/rbac.yaml in each namespace. */
let workerKc: KubeConfig;
let workerKubeconfig: string;
before(async () => {
  let dir: string;
  ({ kc, temporal, stop, dir } = await startTestCluster('baton-real-pods', { realNode: true }));
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: 'baton' } } });
  await applyManifests(
    kc,
    deployManifests('worker.yaml').filter((object) => object.kind === 'ServiceAccount'),
  );
  workerKc = await serviceAccountConfig(kc, 'baton', 'baton-worker');
  workerKubeconfig = join(dir, 'worker.kubeconfig');
  await writeFile(workerKubeconfig, workerKc.exportConfig());
});
after(() => stop?.());

const replicas = 4;
/** Through the Service's ClusterIP, as clients inside a cluster send it: kube-proxy picks a pod per connection. */
const ratePerSecond = 100;
const deps = () => ({ ...realActivityDeps(), kubernetes: () => kubernetesClients(workerKc) });

let namespaces = 0;
/** A namespace of its own with the demo app at v1 on the real node, behind Service `web`, and Baton's Role. */
async function freshApp(): Promise<DemoApp> {
  const app = await deployDemoApp(kc, { namespace: `real-${++namespaces}`, replicas, version: 'v1' });
  await applyManifests(kc, deployManifests('rbac.yaml'), app.namespace);
  return app;
}

function spec(
  app: DemoApp,
  version: string,
  strategy: RolloutSpecInput['strategy'],
  target: { readyTimeout?: string; minReadySeconds?: number } = {},
) {
  return parseRolloutSpec({
    target: demoAppTarget(app, `web-${app.namespace}`, target),
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

/** verify.http on each new pod, quick: two passes 200 ms apart, within 5 s. */
const verification = (versionFrom: { json: string } | { header: string }) => ({
  http: httpVerification.parse({ versionFrom, passes: 2, interval: '200ms', timeout: '5s' }),
});

const failures = (stats: LoadStats) =>
  `${stats.failed} of ${stats.sent} failed: ${JSON.stringify(stats.errors)}`;

describe('Kubernetes rollouts of real pods under load through the Service, by the least-privilege worker', () => {
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
      assert.deepEqual(await servingVersions(kc, app), Array<string>(replicas).fill('v2'));
    });
  }

  it('recreate: every pod on v2, and requests fail while no pod runs, by design', async () => {
    const app = await freshApp();
    const { result, load } = await underLoad(app, spec(app, 'v2', { type: 'recreate' }));
    assert.equal(result.phase, 'succeeded', result.reason);
    assert.ok(load.failed > 0, `recreate leaves a moment with no pod, yet nothing failed: ${failures(load)}`);
    assert.deepEqual(await servingVersions(kc, app), Array<string>(replicas).fill('v2'));
  });

  it('a version whose readiness probe fails is rolled back, every old pod serving, no request failed', async () => {
    const app = await freshApp();
    const { result, load } = await underLoad(
      app,
      spec(app, 'broken', { type: 'rolling' }, { readyTimeout: '15s' }),
    );
    assert.equal(result.phase, 'rolled-back', result.reason);
    assert.match(result.reason ?? '', /not Ready|available/);
    assert.equal(load.failed, 0, failures(load));
    assert.deepEqual(load.byVersion.broken, undefined, 'no request reached a pod that never became Ready');
    assert.deepEqual(await servingVersions(kc, app), Array<string>(replicas).fill('v1'));
  });

  it('verify.http checks each new pod at its own address; a pod that fails it rolls the rollout back', async () => {
    const checked = await freshApp();
    const passing = spec(checked, 'v2', { type: 'rolling' });
    const verified = await underLoad(checked, { ...passing, verify: verification({ json: 'version' }) });
    assert.equal(verified.result.phase, 'succeeded', verified.result.reason);
    assert.equal(verified.load.failed, 0, failures(verified.load));

    // The pods answer their probes, but not with the version where this check looks for it.
    const app = await freshApp();
    const failing = spec(app, 'v2', { type: 'rolling' });
    const { result, load } = await underLoad(app, {
      ...failing,
      verify: verification({ header: 'x-no-such-header' }),
    });
    assert.equal(result.phase, 'rolled-back', result.reason);
    assert.match(
      result.reason ?? '',
      /pod web-v2-\S+ failed verification for v2 after \d+ checks: reports version \(none\)/,
    );
    assert.equal(load.failed, 0, failures(load));
    assert.deepEqual(await servingVersions(kc, app), Array<string>(replicas).fill('v1'));
  });

  it('a canary analysis judges the new pods by their own request figures: v2 passes, 5xx and slowness roll back', async () => {
    const canary: RolloutSpecInput['strategy'] = {
      type: 'canary',
      steps: [{ setWeight: 25 }, { analysis: { window: '6s', minRequests: 40 } }, { setWeight: 50 }],
    };
    const analysed = async (version: string) => {
      const app = await freshApp();
      const rollout = parseRolloutSpec({
        target: demoAppTarget(app, `web-${app.namespace}`, { metrics: demoAppMetrics }),
        version,
        strategy: canary,
      });
      // A connection per request: the Service then sends the new pod its share from the moment it is Ready.
      const load = startLoad({ url: app.url, ratePerSecond, keepAlive: false });
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const { handle, stop: stopWorker } = await startRolloutInProcess(temporal, deps(), rollout);
      try {
        const result = await handle.result();
        const analysis = (await handle.query(statusQuery)).canary?.analyses[0];
        return { app, result, analysis, load: await load.stop() };
      } finally {
        await stopWorker();
        await load.stop();
      }
    };

    const good = await analysed('v2');
    assert.equal(good.result.phase, 'succeeded', good.result.reason);
    assert.equal(good.analysis?.passed, true, JSON.stringify(good.analysis));
    // One pod of four carries the canary: about a quarter of 100 requests a second, for 6 s.
    assert.ok((good.analysis?.canary?.requests ?? 0) >= 40, JSON.stringify(good.analysis));
    assert.ok((good.analysis?.stable?.requests ?? 0) > (good.analysis?.canary?.requests ?? 0));
    assert.equal(good.analysis?.canary?.errorRate, 0);
    assert.ok(
      (good.analysis?.canary?.responseTimeMs ?? 0) >= 20,
      'the demo app takes 20 ms over each answer',
    );
    assert.equal(good.load.failed, 0, failures(good.load));

    const erroring = await analysed('erroring');
    assert.equal(erroring.result.phase, 'rolled-back', erroring.result.reason);
    assert.match(
      erroring.result.reason ?? '',
      /analysis at step 2 failed: the canary's 5xx rate [\d.]+% is above 5%/,
    );
    assert.ok((erroring.analysis?.canary?.errorRate ?? 0) > 10, JSON.stringify(erroring.analysis));
    assert.equal(erroring.analysis?.stable?.errorRate, 0);
    assert.deepEqual(await servingVersions(kc, erroring.app), Array<string>(replicas).fill('v1'));

    const slow = await analysed('slow');
    assert.equal(slow.result.phase, 'rolled-back', slow.result.reason);
    assert.match(slow.result.reason ?? '', /mean response time [\d.]+ ms is more than 2x/);
    assert.ok((slow.analysis?.canary?.responseTimeMs ?? 0) >= 200, JSON.stringify(slow.analysis));
    assert.equal(slow.load.failed, 0, failures(slow.load));
    assert.deepEqual(await servingVersions(kc, slow.app), Array<string>(replicas).fill('v1'));
  });

  it('a version whose container exits after 5 s never counts available (minReadySeconds 10), and is rolled back', async () => {
    const app = await freshApp();
    const rollout = spec(app, 'crashing', { type: 'rolling' }, { readyTimeout: '20s', minReadySeconds: 10 });
    const { result } = await underLoad(app, rollout);
    assert.equal(result.phase, 'rolled-back', result.reason);
    // Requests a crashing pod held when it died fail: that is the crash, which no rollout can undo.
    assert.deepEqual(await servingVersions(kc, app), Array<string>(replicas).fill('v1'));
  });

  it('finishes after its worker is killed with SIGKILL mid-rollout, no request failed, nothing made twice', async () => {
    const app = await freshApp();
    const taskQueue = uniqueTaskQueue('real-pods-crash');
    const env = {
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: temporal.namespace,
      BATON_TASK_QUEUE: taskQueue,
      KUBECONFIG: workerKubeconfig,
    };
    const load = startLoad({ url: app.url, ratePerSecond });
    let stats: LoadStats;
    let worker = await startWorkerProcess(env);
    try {
      const handle = await temporal.client.workflow.start<typeof rolloutWorkflow>('rolloutWorkflow', {
        args: [spec(app, 'v2', { type: 'rolling' })],
        taskQueue,
        workflowId: `rollout/web-${app.namespace}`,
      });
      // Once the new version has pods and the old one still serves, kill the worker as a crash would.
      await until(async () => {
        const next = (await handle.query(statusQuery)).kubernetes?.deployments.find((d) => d.role === 'next');
        return (next?.replicas ?? 0) >= 1;
      });
      await worker.crash();
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      worker = await startWorkerProcess(env);
      const result = await handle.result();
      assert.equal(result.phase, 'succeeded', result.reason);
    } finally {
      await worker.stop();
      stats = await load.stop();
    }
    assert.equal(stats.failed, 0, failures(stats));
    assert.deepEqual(await servingVersions(kc, app), Array<string>(replicas).fill('v2'));
    const replicaSets = await kc
      .makeApiClient(AppsV1Api)
      .listNamespacedReplicaSet({ namespace: app.namespace });
    assert.deepEqual(
      replicaSets.items.map((rs) => rs.metadata?.ownerReferences?.[0]?.name).sort(),
      ['web', 'web-v2'],
      'one ReplicaSet per Deployment',
    );
  });
});
