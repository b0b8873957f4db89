import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { KubeConfig } from '@kubernetes/client-node';
import { CoreV1Api, DiscoveryV1Api } from '@kubernetes/client-node';
import { realActivityDeps } from '../../activities';
import { kubernetesClients } from '../../activities/kubernetes/api';
import type { LocalCluster } from '../../infra/kubernetes-cluster';
import type { WorkflowHandle } from '@temporalio/client';
import type { RolloutSpec, RolloutSpecInput } from '../../spec';
import { parseRolloutSpec } from '../../spec';
import type { rolloutWorkflow } from '../../workflows';
import type { RolloutResult, RolloutStatus } from '../../workflows/messages';
import { abortUpdate, promoteUpdate, statusQuery } from '../../workflows/messages';
import { exampleFiles, localExample, promoteUntilDone } from '../helpers/examples';
import {
  deploymentsOf,
  seedApp,
  seededAppTarget,
  startTestCluster,
  watchCapacity,
} from '../helpers/kubernetes';
import { runRollout, startRolloutInProcess, until } from '../helpers/rollout';
import type { TestTemporal } from '../helpers/temporal';

let cluster: LocalCluster;
let kc: KubeConfig;
let temporal: TestTemporal;
let dir: string;
let stop: (() => Promise<void>) | undefined;
before(async () => {
  ({ cluster, kc, temporal, dir, stop } = await startTestCluster('baton-strategies'));
});
after(() => stop?.());

const replicas = 4;
const image = 'registry.local/web';
const deps = () => ({ ...realActivityDeps(), kubernetes: () => kubernetesClients(kc) });

function spec(namespace: string, version: string, strategy: RolloutSpecInput['strategy']) {
  return parseRolloutSpec({ target: seededAppTarget(namespace), version, strategy });
}

/** Runs a rollout on its own worker while `steer` queries and commands it, and returns what `steer` returns. */
async function steered(
  rollout: RolloutSpec,
  steer: (handle: WorkflowHandle<typeof rolloutWorkflow>) => Promise<RolloutResult>,
): Promise<RolloutResult> {
  const { handle, stop } = await startRolloutInProcess(temporal, deps(), rollout);
  try {
    return await steer(handle);
  } finally {
    await stop();
  }
}

const serviceSelector = async (namespace: string) =>
  (await kc.makeApiClient(CoreV1Api).readNamespacedService({ namespace, name: 'web' })).spec?.selector;

/** The images of the pods the Service's endpoints send traffic to now. */
async function servedImages(namespace: string, service = 'web'): Promise<string[]> {
  const slices = await kc
    .makeApiClient(DiscoveryV1Api)
    .listNamespacedEndpointSlice({ namespace, labelSelector: `kubernetes.io/service-name=${service}` });
  const names = slices.items
    .flatMap((s) => s.endpoints)
    .filter((e) => e.conditions?.ready)
    .map((e) => e.targetRef?.name);
  const pods = await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace });
  return [
    ...new Set(
      pods.items
        .filter((p) => names.includes(p.metadata?.name))
        .map((p) => p.spec?.containers[0]?.image ?? ''),
    ),
  ];
}

describe('recreate and blue/green on a real Kubernetes control plane', () => {
  it('recreate: all old pods go, the pre-step runs, the new version comes up to full', async () => {
    const namespace = 'recreate';
    await seedApp(kc, namespace, { replicas, image });
    const marker = join(dir, 'migrated');
    const watch = await watchCapacity(kc, namespace, { app: 'web' });
    const result = await runRollout(
      temporal,
      deps(),
      spec(namespace, 'v2', {
        type: 'recreate',
        preStep: { argv: ['/usr/bin/touch', `${marker}-{name}-{version}`] },
      }),
    );
    const report = await watch.stop();
    assert.equal(result.phase, 'succeeded', result.reason);
    assert.ok(existsSync(`${marker}-web-recreate-v2`));
    assert.equal(report.minServing, 0, 'recreate leaves no pod serving for a moment, by design');
    assert.ok(report.maxPods <= replicas, `never both versions at once: up to ${report.maxPods} pods`);
    assert.deepEqual(await deploymentsOf(kc, namespace), {
      web: { replicas: 0, available: 0 },
      'web-v2': { replicas, available: replicas },
    });
  });

  it('recreate: a failing pre-step brings the old version back to full and removes the new Deployment', async () => {
    const namespace = 'recreate-fail';
    await seedApp(kc, namespace, { replicas, image });
    const result = await runRollout(
      temporal,
      deps(),
      spec(namespace, 'v2', { type: 'recreate', preStep: { argv: ['/bin/false'] } }),
    );
    assert.equal(result.phase, 'rolled-back');
    assert.match(result.reason ?? '', /pre-step \/bin\/false/);
    assert.deepEqual(await deploymentsOf(kc, namespace), { web: { replicas, available: replicas } });
  });

  it('blue/green: the new set comes up with no traffic, waits for promote, then takes all traffic at once', async () => {
    const namespace = 'blue-green';
    await seedApp(kc, namespace, { replicas, image });
    await kc.makeApiClient(CoreV1Api).createNamespacedService({
      namespace,
      body: {
        metadata: { name: 'web-preview' },
        spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] },
      },
    });
    const watch = await watchCapacity(kc, namespace, { service: 'web' });
    const result = await steered(
      spec(namespace, 'v2', {
        type: 'blue-green',
        autoPromote: false,
        scaleDownDelay: '2s',
        previewService: 'web-preview',
      }),
      async (handle) => {
        await until(async () => (await handle.query(statusQuery)).phase === 'paused');
        // At the gate: the new set is up and available, and the Service still sends everything to the old one.
        assert.deepEqual((await deploymentsOf(kc, namespace))['web-v2'], { replicas, available: replicas });
        assert.ok((await serviceSelector(namespace))?.['pod-template-hash'], 'the Service is pinned');
        assert.deepEqual(await servedImages(namespace), [`${image}:v1`]);
        // The preview Service already sends its callers to the new set only.
        await until(async () => (await servedImages(namespace, 'web-preview')).join() === `${image}:v2`);
        await handle.executeUpdate(promoteUpdate, { args: [{ by: 'hank' }] });
        // After the switch, within the scale-down delay: all traffic on v2, the old set still there.
        await until(async () => (await servedImages(namespace)).join() === `${image}:v2`);
        assert.equal(
          (await deploymentsOf(kc, namespace)).web?.replicas,
          replicas,
          'the old set waits as the way back',
        );
        return handle.result();
      },
    );
    const report = await watch.stop();
    assert.equal(result.phase, 'succeeded', result.reason);
    assert.ok(report.minServing >= replicas, `Ready pods never fell below ${replicas}: ${report.minServing}`);
    assert.ok(report.maxPods <= 2 * replicas);
    assert.deepEqual(
      await serviceSelector(namespace),
      { app: 'web' },
      'the Service has its own selector back',
    );
    assert.deepEqual(await deploymentsOf(kc, namespace), {
      web: { replicas: 0, available: 0 },
      'web-v2': { replicas, available: replicas },
    });
    assert.deepEqual(await servedImages(namespace), [`${image}:v2`]);
  });

  it('blue/green: a new set that never becomes Ready is removed and the Service never left the old one', async () => {
    const namespace = 'blue-green-broken';
    await seedApp(kc, namespace, { replicas, image });
    const result = await runRollout(
      temporal,
      deps(),
      spec(namespace, cluster.pods.brokenTag, { type: 'blue-green' }),
    );
    assert.equal(result.phase, 'rolled-back');
    assert.match(result.reason ?? '', /not Ready/);
    assert.deepEqual(await serviceSelector(namespace), { app: 'web' });
    assert.deepEqual(await deploymentsOf(kc, namespace), { web: { replicas, available: replicas } });
    assert.deepEqual(await servedImages(namespace), [`${image}:v1`]);
  });

  it('canary: the new version gets its share of pods and traffic, an analysis, a pause, then everyone', async () => {
    const namespace = 'canary';
    await seedApp(kc, namespace, { replicas, image });
    const watch = await watchCapacity(kc, namespace, { service: 'web' });
    const result = await steered(
      spec(namespace, 'v2', {
        type: 'canary',
        steps: [{ setWeight: 25 }, { analysis: { window: '2s' } }, { pause: {} }],
      }),
      async (handle) => {
        await until(async () => (await handle.query(statusQuery)).phase === 'paused');
        // At the pause: one pod of four on v2 beside three of v1, both behind the Service.
        assert.deepEqual(await deploymentsOf(kc, namespace), {
          web: { replicas: 3, available: 3 },
          'web-v2': { replicas: 1, available: 1 },
        });
        assert.deepEqual((await servedImages(namespace)).sort(), [`${image}:v1`, `${image}:v2`]);
        const status = await handle.query(statusQuery);
        assert.equal(status.canary?.weight, 25);
        assert.equal(status.canary?.analyses[0]?.passed, true);
        await handle.executeUpdate(promoteUpdate, { args: [{ by: 'hank' }] });
        return handle.result();
      },
    );
    const report = await watch.stop();
    assert.equal(result.phase, 'succeeded', result.reason);
    assert.ok(report.minServing >= replicas, `Ready pods never fell below ${replicas}: ${report.minServing}`);
    assert.deepEqual(await deploymentsOf(kc, namespace), {
      web: { replicas: 0, available: 0 },
      'web-v2': { replicas, available: replicas },
    });
  });

  it('canary: an abort at the pause brings the old version back to full and removes the canary', async () => {
    const namespace = 'canary-abort';
    await seedApp(kc, namespace, { replicas, image });
    const watch = await watchCapacity(kc, namespace, { service: 'web' });
    const result = await steered(
      spec(namespace, 'v2', { type: 'canary', steps: [{ setWeight: 50 }, { pause: {} }] }),
      async (handle) => {
        await until(async () => (await handle.query(statusQuery)).phase === 'paused');
        await handle.executeUpdate(abortUpdate, { args: [{ by: 'hank', reason: 'latency' }] });
        return handle.result();
      },
    );
    const report = await watch.stop();
    assert.equal(result.phase, 'rolled-back');
    assert.match(result.reason ?? '', /aborted by hank: latency/);
    assert.ok(report.minServing >= replicas, `Ready pods never fell below ${replicas}: ${report.minServing}`);
    assert.deepEqual(await deploymentsOf(kc, namespace), { web: { replicas, available: replicas } });
    assert.deepEqual(await servedImages(namespace), [`${image}:v1`]);
  });
});

describe('surge then retire oldest on a real Kubernetes control plane', () => {
  it('doubles the pods on v2, then removes the old ones, never below the desired count', async () => {
    const namespace = 'surge';
    await seedApp(kc, namespace, { replicas, image });
    const watch = await watchCapacity(kc, namespace, { service: 'web' });
    const result = await runRollout(temporal, deps(), spec(namespace, 'v2', { type: 'surge' }));
    const report = await watch.stop();
    assert.equal(result.phase, 'succeeded', result.reason);
    assert.ok(report.minServing >= replicas, `Ready pods never fell below ${replicas}: ${report.minServing}`);
    assert.ok(report.maxPods >= 2 * replicas, `the app doubled: up to ${report.maxPods} pods`);
    assert.deepEqual(await deploymentsOf(kc, namespace), {
      web: { replicas: 0, available: 0 },
      'web-v2': { replicas, available: replicas },
    });
  });

  it('in rounds of 50%, a broken version is rolled back with every old pod serving', async () => {
    const namespace = 'surge-broken';
    await seedApp(kc, namespace, { replicas, image });
    const watch = await watchCapacity(kc, namespace, { service: 'web' });
    const result = await runRollout(
      temporal,
      deps(),
      spec(namespace, cluster.pods.brokenTag, { type: 'surge', batchSize: '50%' }),
    );
    const report = await watch.stop();
    assert.equal(result.phase, 'rolled-back');
    assert.ok(report.minServing >= replicas, `Ready pods never fell below ${replicas}: ${report.minServing}`);
    assert.deepEqual(await deploymentsOf(kc, namespace), { web: { replicas, available: replicas } });
  });
});

describe('an abort midway restores the old version completely, on a real Kubernetes control plane', () => {
  const cases: Array<{
    name: string;
    strategy: RolloutSpecInput['strategy'] | (() => RolloutSpecInput['strategy']);
    midway: (status: RolloutStatus) => boolean;
    holdsCapacity: boolean;
  }> = [
    {
      name: 'blue/green, at the approval before the switch',
      strategy: { type: 'blue-green', autoPromote: false },
      midway: (s) => s.phase === 'paused',
      holdsCapacity: true,
    },
    {
      name: 'surge, after its first round',
      strategy: { type: 'surge', batchSize: '50%' },
      midway: (s) =>
        (s.kubernetes?.deployments.find((d) => d.role === 'next')?.available ?? 0) >= replicas / 2,
      holdsCapacity: true,
    },
    {
      name: 'recreate, while its pre-step runs',
      // The pre-step marks that it started, then takes 5 s: the abort lands while it runs. (No braces: an argv
      // template reads them as placeholders.)
      strategy: () => ({
        type: 'recreate',
        preStep: {
          argv: [
            process.execPath,
            '-e',
            `require('node:fs').writeFileSync(${JSON.stringify(join(dir, 'abort-pre-step-started'))}, ''); setTimeout(Date.now, 5000)`,
          ],
        },
      }),
      midway: () => existsSync(join(dir, 'abort-pre-step-started')),
      holdsCapacity: false,
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const strategy = typeof c.strategy === 'function' ? c.strategy() : c.strategy;
      const namespace = `abort-${strategy?.type ?? 'rolling'}`;
      await seedApp(kc, namespace, { replicas, image });
      const watch = await watchCapacity(kc, namespace, { service: 'web' });
      const result = await steered(spec(namespace, 'v2', strategy), async (handle) => {
        await until(async () => c.midway(await handle.query(statusQuery)));
        await handle.executeUpdate(abortUpdate, { args: [{ by: 'hank', reason: 'midway' }] });
        return handle.result();
      });
      const report = await watch.stop();
      assert.equal(result.phase, 'rolled-back', result.reason);
      assert.match(result.reason ?? '', /aborted by hank: midway/);
      assert.deepEqual(await deploymentsOf(kc, namespace), { web: { replicas, available: replicas } });
      assert.deepEqual(await serviceSelector(namespace), { app: 'web' });
      assert.deepEqual(await servedImages(namespace), [`${image}:v1`]);
      if (c.holdsCapacity)
        assert.ok(
          report.minServing >= replicas,
          `Ready pods never fell below ${replicas}: ${report.minServing}`,
        );
    });
  }
});

describe('examples/ on a real Kubernetes control plane', () => {
  for (const file of exampleFiles('kubernetes')) {
    it(`${file}: rolls a Deployment of ${replicas} to the example's version`, async () => {
      const namespace = `example-${file.replace(/^kubernetes-|\.yaml$/g, '')}`;
      await seedApp(kc, namespace, { replicas, image });
      const rollout = parseRolloutSpec(
        localExample(file, (written) => ({
          ...seededAppTarget(namespace),
          name: namespace,
          ...(written.kind === 'kubernetes' && written.mode ? { mode: written.mode } : {}),
        })),
        file,
      );
      const result = await steered(rollout, async (handle) => {
        return promoteUntilDone(handle);
      });
      assert.equal(result.phase, 'succeeded', result.reason);
      const deployments = await deploymentsOf(kc, namespace);
      const serving = Object.entries(deployments).filter(([, d]) => (d.replicas ?? 0) > 0);
      assert.equal(serving.length, 1, JSON.stringify(deployments));
      assert.deepEqual(serving[0]?.[1], { replicas, available: replicas });
      assert.deepEqual(await servedImages(namespace), [`${image}:${rollout.version}`]);
    });
  }
});
