import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { KubeConfig } from '@kubernetes/client-node';
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import { realActivityDeps } from '../../activities';
import { MockActivityEnvironment } from '@temporalio/testing';
import { kubernetesClients } from '../../activities/kubernetes/api';
import { createKubernetesActivities } from '../../activities/kubernetes/kubernetes-activities';
import type { LocalCluster } from '../../infra/kubernetes-cluster';
import { delay } from '../../infra/processes';
import type { RolloutSpecInput } from '../../spec';
import type { KubernetesTarget } from '../../spec/rollout';
import { parseRolloutSpec } from '../../spec';
import type { rolloutWorkflow } from '../../workflows';
import type { RolloutStatus } from '../../workflows/messages';
import { abortUpdate, pauseUpdate, resumeUpdate, statusQuery } from '../../workflows/messages';
import type { CapacityReport } from '../helpers/kubernetes';
import { deploymentsOf, seedApp, startTestCluster, watchCapacity } from '../helpers/kubernetes';
import { runToEnd } from '../helpers/process';
import { runRollout, startRolloutInProcess, until } from '../helpers/rollout';
import type { TestTemporal } from '../helpers/temporal';
import { uniqueTaskQueue } from '../helpers/temporal';
import { startWorkerProcess } from '../helpers/worker';

const root = join(__dirname, '..', '..');
let cluster: LocalCluster;
let kc: KubeConfig;
let temporal: TestTemporal;
let stop: (() => Promise<void>) | undefined;
before(async () => {
  ({ cluster, kc, temporal, stop } = await startTestCluster('baton-rolling'));
});
after(() => stop?.());

const replicas = 10;
const image = 'registry.local/web';

const seed = (namespace: string) => seedApp(kc, namespace, { replicas, image });

function spec(namespace: string, version: string, extra: Partial<RolloutSpecInput> = {}) {
  return parseRolloutSpec({
    target: {
      kind: 'kubernetes',
      name: `web-${namespace}`,
      namespace,
      deployment: 'web',
      container: 'app',
      image,
      service: 'web',
      readyTimeout: '8s',
    },
    version,
    strategy: { type: 'rolling', maxSurge: '25%', maxUnavailable: '25%' },
    ...extra,
  });
}

/** The same app rolled in native mode: Baton sets the image of `web` itself. */
const nativeSpec = (namespace: string, version: string) =>
  parseRolloutSpec({
    target: {
      kind: 'kubernetes',
      name: `web-${namespace}`,
      namespace,
      deployment: 'web',
      container: 'app',
      image,
      mode: 'native',
      readyTimeout: '10s',
    },
    version,
    strategy: { type: 'rolling', maxSurge: '25%', maxUnavailable: '25%' },
  });
const nativeTarget = (namespace: string) => nativeSpec(namespace, 'v0').target as KubernetesTarget;

const deps = () => ({ ...realActivityDeps(), kubernetes: () => kubernetesClients(kc) });

async function podImages(namespace: string): Promise<string[]> {
  const pods = await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace });
  return pods.items
    .filter((p) => !p.metadata?.deletionTimestamp)
    .map((p) => p.spec?.containers[0]?.image ?? '');
}

/** 25% of 10: at most 13 pods (surge rounds up), at least 8 serving (unavailable rounds down). */
function assertFencePostsHeld(report: CapacityReport): void {
  assert.ok(report.events > 0, 'the watch saw the rollout');
  assert.ok(report.maxPods <= replicas + 3, `up to ${report.maxPods} pods at once, above ${replicas} + 3`);
  assert.ok(
    report.minServing >= replicas - 2,
    `down to ${report.minServing} serving pods, below ${replicas} - 2`,
  );
}

/**
 * Native mode: Kubernetes' own controller holds maxSurge on its ReplicaSets' sizes, not on live pods (a pod the
 * old ReplicaSet was told to remove runs on until that controller gets to it, which a loaded machine delays, as
 * the new one's pods start), so what it promises is checked: the ReplicaSets never ask for more than 13 pods
 * together, and never fewer than 8 serve.
 */
async function watchNative(namespace: string): Promise<{ stop(): Promise<void> }> {
  const pods = await watchCapacity(kc, namespace, { app: 'web' });
  const apps = kc.makeApiClient(AppsV1Api);
  let most = 0;
  let polling = true;
  const poll = (async () => {
    while (polling) {
      const sets = await apps.listNamespacedReplicaSet({ namespace });
      most = Math.max(
        most,
        sets.items.reduce((sum, set) => sum + (set.spec?.replicas ?? 0), 0),
      );
      await delay(50);
    }
  })();
  return {
    stop: async () => {
      polling = false;
      await poll;
      const report = await pods.stop();
      assert.ok(report.events > 0, 'the watch saw the rollout');
      assert.ok(most <= replicas + 3, `ReplicaSets asked for ${most} pods at once, above ${replicas} + 3`);
      assert.ok(report.minServing >= replicas - 2, `down to ${report.minServing} serving pods`);
    },
  };
}

describe('rolling rollout on a real Kubernetes control plane (kwok nodes)', () => {
  it('moves 10 replicas to a new Deployment, twice, within maxSurge and maxUnavailable throughout', async () => {
    const namespace = 'rolling';
    await seed(namespace);

    // v1 (the user's own Deployment) -> v2 (a Deployment Baton makes beside it)
    let watch = await watchCapacity(kc, namespace, { app: 'web' });
    const first = await runRollout(temporal, deps(), spec(namespace, 'v2'));
    assertFencePostsHeld(await watch.stop());
    assert.equal(first.phase, 'succeeded');
    assert.deepEqual(await deploymentsOf(kc, namespace), {
      web: { replicas: 0, available: 0 },
      'web-v2': { replicas, available: replicas },
    });
    const made = await kc.makeApiClient(AppsV1Api).readNamespacedDeployment({ namespace, name: 'web-v2' });
    assert.equal(made.metadata?.labels?.['app.kubernetes.io/managed-by'], 'baton');
    assert.equal(made.metadata?.labels?.['baton.dev/app'], 'web');
    assert.equal(made.metadata?.annotations?.['baton.dev/version'], 'v2');
    assert.match(made.metadata?.annotations?.['baton.dev/rollout'] ?? '', /^rollout\/web-rolling/);
    assert.deepEqual(
      first.kubernetes?.deployments.map((d) => [d.role, d.name, d.available]),
      [
        ['stable', 'web', 0],
        ['next', 'web-v2', replicas],
      ],
    );

    // v2 -> v3: both Deployments are Baton's, so each pod leaves the Service before it goes
    watch = await watchCapacity(kc, namespace, { app: 'web' });
    const second = await runRollout(temporal, deps(), spec(namespace, 'v3'));
    const report = await watch.stop();
    assertFencePostsHeld(report);
    assert.equal(second.phase, 'succeeded');
    assert.equal(
      report.detachedBeforeDeletion.length,
      replicas,
      `detached first: ${report.detachedBeforeDeletion.join(', ')}`,
    );
    assert.ok(report.detachedBeforeDeletion.every((name) => name.startsWith('web-v2-')));
    // The user's Deployment and the previous version stay at 0 as the way back; nothing older is kept.
    assert.deepEqual(await deploymentsOf(kc, namespace), {
      web: { replicas: 0, available: 0 },
      'web-v2': { replicas: 0, available: 0 },
      'web-v3': { replicas, available: replicas },
    });
    assert.deepEqual(await podImages(namespace), Array(replicas).fill(`${image}:v3`));
  });

  it('without a detachDelay, old pods go as new ones become available, within maxSurge and maxUnavailable 0', async () => {
    const namespace = 'as-pods-come';
    await seed(namespace);
    const asPodsCome = (version: string) =>
      spec(namespace, version, { strategy: { type: 'rolling', maxSurge: '25%', maxUnavailable: 0 } });
    const withoutDelay = (version: string) => {
      const rollout = asPodsCome(version);
      return { ...rollout, target: { ...rollout.target, detachDelay: 0 } };
    };
    for (const version of ['v2', 'v3']) {
      const watch = await watchCapacity(kc, namespace, { app: 'web' });
      const { handle, stop: stopWorker } = await startRolloutInProcess(
        temporal,
        deps(),
        withoutDelay(version),
      );
      let result;
      try {
        result = await handle.result();
      } finally {
        await stopWorker();
      }
      const report = await watch.stop();
      assert.equal(result.phase, 'succeeded', result.reason);
      assert.ok(
        report.maxPods <= replicas + 3,
        `up to ${report.maxPods} pods at once, above ${replicas} + 3`,
      );
      assert.ok(
        report.minServing >= replicas,
        `down to ${report.minServing} serving pods, below ${replicas}`,
      );
      assert.deepEqual(await podImages(namespace), Array(replicas).fill(`${image}:${version}`));
      // Each wait returned on progress, not on a whole step of 3: the old pods left in more steps than 4.
      const summaries: string[] = [];
      for (const event of (await handle.fetchHistory()).events ?? [])
        if (event.userMetadata?.summary?.data)
          summaries.push(Buffer.from(event.userMetadata.summary.data).toString());
      assert.ok(
        summaries.some((text) => text.includes('wait for more than')),
        summaries.join('\n'),
      );
    }
    // A version that never becomes Ready goes back the same way, the old pods all available.
    const broken = await runRollout(temporal, deps(), withoutDelay(cluster.pods.brokenTag));
    assert.equal(broken.phase, 'rolled-back');
    assert.match(broken.reason ?? '', /none more for 8 s/);
    await until(async () => (await podImages(namespace)).length === replicas);
    assert.deepEqual(await podImages(namespace), Array(replicas).fill(`${image}:v3`));
  });

  it('rolls a version whose pods never become Ready back to the old one, every replica available', async () => {
    const namespace = 'broken';
    await seed(namespace);
    const watch = await watchCapacity(kc, namespace, { app: 'web' });
    const result = await runRollout(temporal, deps(), spec(namespace, cluster.pods.brokenTag));
    assertFencePostsHeld(await watch.stop());
    assert.equal(result.phase, 'rolled-back');
    assert.match(
      result.reason ?? '',
      /web-broken: 0 of 3 pods available, none more for 8 s; not Ready: web-broken-/,
    );
    // Only the old version is left, whole.
    assert.deepEqual(await deploymentsOf(kc, namespace), { web: { replicas, available: replicas } });
    await until(async () => (await podImages(namespace)).length === replicas);
    assert.deepEqual(await podImages(namespace), Array(replicas).fill(`${image}:v1`));
  });

  it('native mode: rolls the one Deployment by its own controller, and undoes a broken version', async () => {
    const namespace = 'native';
    await seed(namespace);
    const native = (version: string) => nativeSpec(namespace, version);
    let watch = await watchNative(namespace);
    const rolled = await runRollout(temporal, deps(), native('v2'));
    await watch.stop();
    assert.equal(rolled.phase, 'succeeded', rolled.reason);
    assert.deepEqual(await deploymentsOf(kc, namespace), { web: { replicas, available: replicas } });
    await until(async () => (await podImages(namespace)).length === replicas);
    assert.deepEqual(await podImages(namespace), Array(replicas).fill(`${image}:v2`));

    watch = await watchNative(namespace);
    const undone = await runRollout(temporal, deps(), native(cluster.pods.brokenTag));
    await watch.stop();
    assert.equal(undone.phase, 'rolled-back');
    assert.match(undone.reason ?? '', /none more for 10 s; not Ready: web-/);
    const web = await kc.makeApiClient(AppsV1Api).readNamespacedDeployment({ namespace, name: 'web' });
    assert.equal(web.spec?.template.spec?.containers[0]?.image, `${image}:v2`);
    await until(async () => (await podImages(namespace)).length === replicas);
    assert.deepEqual(await podImages(namespace), Array(replicas).fill(`${image}:v2`));
  });

  it('native mode: a paused Deployment starts no new pod until resumed (spec.paused)', async () => {
    const namespace = 'paused';
    await seed(namespace);
    const activities = createKubernetesActivities({ kubernetes: () => kubernetesClients(kc) });
    const env = new MockActivityEnvironment();
    const ref = { namespace, name: 'web' };
    await env.run(activities.setDeploymentPaused, { ...ref, paused: true });
    await env.run(activities.setDeploymentImage, {
      target: nativeTarget(namespace),
      version: 'v2',
      maxSurge: '25%',
      maxUnavailable: '25%',
    });
    await delay(3_000);
    assert.deepEqual(await podImages(namespace), Array(replicas).fill(`${image}:v1`));
    await env.run(activities.setDeploymentPaused, { ...ref, paused: false });
    const done = await env.run(activities.waitForRollout, { ...ref, timeoutMs: 30_000 });
    assert.deepEqual(done, { replicas, available: replicas });
    await until(async () => (await podImages(namespace)).length === replicas);
    assert.deepEqual(await podImages(namespace), Array(replicas).fill(`${image}:v2`));
  });

  it('an operator abort mid-way scales the old version back up and removes the new one', async () => {
    const namespace = 'abort';
    await seed(namespace);
    const watch = await watchCapacity(kc, namespace, { app: 'web' });
    const { handle, stop } = await startRolloutInProcess(temporal, deps(), spec(namespace, 'v2'));
    try {
      await until(async () => {
        const next = (await handle.query(statusQuery)).kubernetes?.deployments.find((d) => d.role === 'next');
        return (next?.available ?? 0) >= 3;
      });
      const accepted = await handle.executeUpdate(abortUpdate, {
        args: [{ by: 'dana', reason: 'canary alarms' }],
      });
      assert.equal(accepted.commands.at(-1)?.command, 'abort');
      const result = await handle.result();
      assert.equal(result.phase, 'rolled-back');
      assert.equal(result.reason, 'aborted by dana: canary alarms');
    } finally {
      await stop();
    }
    assertFencePostsHeld(await watch.stop());
    assert.deepEqual(await deploymentsOf(kc, namespace), { web: { replicas, available: replicas } });
  });

  it('native mode: pause sets spec.paused on the Deployment, resume clears it and the rollout finishes', async () => {
    const namespace = 'native-pause';
    await seed(namespace);
    const apps = kc.makeApiClient(AppsV1Api);
    const { handle, stop } = await startRolloutInProcess(temporal, deps(), nativeSpec(namespace, 'v2'));
    try {
      await until(async () => (await handle.query(statusQuery)).phase === 'progressing');
      await handle.executeUpdate(pauseUpdate, { args: [{ by: 'erin' }] });
      await until(
        async () => (await apps.readNamespacedDeployment({ namespace, name: 'web' })).spec?.paused === true,
      );
      assert.equal((await handle.query(statusQuery)).phase, 'paused');
      await handle.executeUpdate(resumeUpdate, { args: [{ by: 'erin' }] });
      const result = await handle.result();
      assert.equal(result.phase, 'succeeded', result.reason);
    } finally {
      await stop();
    }
    const web = await apps.readNamespacedDeployment({ namespace, name: 'web' });
    assert.notEqual(web.spec?.paused, true);
    await until(async () => (await podImages(namespace)).length === replicas);
    assert.deepEqual(await podImages(namespace), Array(replicas).fill(`${image}:v2`));
  });

  it('runs examples/kubernetes-rolling.yaml with the baton CLI and a worker process', async () => {
    await seedApp(kc, 'default', { replicas: 4, image });
    const taskQueue = uniqueTaskQueue('kubernetes-cli');
    const env = {
      ...process.env,
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: temporal.namespace,
      BATON_TASK_QUEUE: taskQueue,
      KUBECONFIG: cluster.kubeconfig,
      NO_COLOR: '1',
    };
    const worker = await startWorkerProcess(env);
    try {
      const baton = (...args: string[]) =>
        runToEnd(process.execPath, [join(root, 'bin', 'baton.js'), ...args], { env });
      const started = Date.now();
      const run = await baton('start', '-f', join(root, 'examples', 'kubernetes-rolling.yaml'));
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout.trim(), 'web: succeeded, 4 replicas on v2');
      // minReadySeconds 5: each of the three scale-ups of 4 replicas at 25% waits that long at least.
      assert.ok(Date.now() - started >= 15_000, `took ${Date.now() - started} ms`);
      // Piped, the progress view writes one line per change of a Deployment.
      // It polls the status every 250 ms, so which in-between states it catches depends on timing; some it must.
      assert.match(run.stderr, /web-v2 \(next, v2\): [123]\/\d available/);
      assert.match(run.stderr, /web-v2 \(next, v2\): 4\/4 available/);
      const json = await baton('status', 'web', '-o', 'json');
      const final = JSON.parse(json.stdout) as RolloutStatus;
      assert.deepEqual(
        final.kubernetes?.deployments.map((d) => [d.name, d.replicas, d.available]),
        [
          ['web', 0, 0],
          ['web-v2', 4, 4],
        ],
      );
      const status = await baton('status', 'web');
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, /web\s+rolling\s+→ v2\s+4 replicas\s+succeeded/);
      assert.match(status.stdout, /web-v2\s+next\s+v2\s+4\/4 available/);
    } finally {
      await worker.stop();
    }
    assert.deepEqual(await deploymentsOf(kc, 'default'), {
      web: { replicas: 0, available: 0 },
      'web-v2': { replicas: 4, available: 4 },
    });
  });

  it('finishes after its worker is killed mid-way, without a second copy of anything', async () => {
    const namespace = 'crash';
    await seed(namespace);
    const taskQueue = uniqueTaskQueue('kubernetes-crash');
    const env = {
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: temporal.namespace,
      BATON_TASK_QUEUE: taskQueue,
      KUBECONFIG: cluster.kubeconfig,
    };
    const watch = await watchCapacity(kc, namespace, { app: 'web' });
    let worker = await startWorkerProcess(env);
    const handle = await temporal.client.workflow.start<typeof rolloutWorkflow>('rolloutWorkflow', {
      args: [spec(namespace, 'v2')],
      taskQueue,
      workflowId: `rollout/web-${namespace}/crash-${Date.now()}`,
    });
    try {
      // Once the new Deployment has pods but the old one still serves, kill the worker as a crash would.
      await until(async () => {
        const next = (await handle.query(statusQuery)).kubernetes?.deployments.find((d) => d.role === 'next');
        return (next?.replicas ?? 0) >= 3;
      });
      await worker.crash();
      await delay(1_000);
      worker = await startWorkerProcess(env);
      const result = await handle.result();
      assert.equal(result.phase, 'succeeded');
    } finally {
      await worker.stop();
    }
    assertFencePostsHeld(await watch.stop());
    assert.deepEqual(await deploymentsOf(kc, namespace), {
      web: { replicas: 0, available: 0 },
      'web-v2': { replicas, available: replicas },
    });
    const replicaSets = await kc.makeApiClient(AppsV1Api).listNamespacedReplicaSet({ namespace });
    assert.deepEqual(
      replicaSets.items.map((rs) => rs.metadata?.ownerReferences?.[0]?.name).sort(),
      ['web', 'web-v2'],
      'one ReplicaSet per Deployment',
    );
    assert.deepEqual(await podImages(namespace), Array(replicas).fill(`${image}:v2`));
  });
});
