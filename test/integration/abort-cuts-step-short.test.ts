import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { KubeConfig } from '@kubernetes/client-node';
import { realActivityDeps } from '../../activities';
import { HaproxyTrafficProvider } from '../../activities/haproxy/traffic-provider';
import { kubernetesClients } from '../../activities/kubernetes/api';
import { hostVersions } from '../../infra/fleet/hosts';
import type { LocalCluster } from '../../infra/kubernetes-cluster';
import type { RolloutSpecInput } from '../../spec';
import { parseRolloutSpec } from '../../spec';
import type { RolloutStatus } from '../../workflows/messages';
import { abortUpdate, statusQuery } from '../../workflows/messages';
import { inRotation, useFleets } from '../helpers/fleet';
import {
  deploymentsOf,
  seedApp,
  seededAppTarget,
  seededImage,
  startTestCluster,
} from '../helpers/kubernetes';
import { startRolloutInProcess, until } from '../helpers/rollout';

/**
 * An abort, or the progress deadline, must not wait for the step in flight: a drain held open by a request, or
 * pods that never become ready, would hold the rollback for as long as they last.
 */
const { temporal: testTemporal, fleet: startFleet } = useFleets();

/** A request that takes this long holds the drain of the server it lands on (HAProxy's own timeout is 30 s). */
const heldMs = 25_000;
/** What "at once" means: far below the time the held step would still take. */
const promptlyMs = 6_000;

type Handle = Awaited<ReturnType<typeof startRolloutInProcess>>['handle'];

/** Waits until the rollout has been in `inStep` for a second, then returns when that was. */
async function settledIn(handle: Handle, inStep: (status: RolloutStatus) => boolean): Promise<void> {
  await until(async () => inStep(await handle.query(statusQuery)), 60_000);
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  assert.ok(inStep(await handle.query(statusQuery)), 'the step is still in flight a second later');
}

/** How long from now until the rollout is rolling back or has rolled back. */
async function untilRollbackBegins(handle: Handle): Promise<number> {
  const from = Date.now();
  await until(async () => {
    const { phase } = await handle.query(statusQuery);
    return phase === 'rolling-back' || phase === 'rolled-back';
  }, 60_000);
  return Date.now() - from;
}

describe('an abort or the progress deadline cuts a fleet drain short (real HAProxy)', () => {
  const drainsForever = async (name: string, extra: Partial<RolloutSpecInput>) => {
    const fleet = await startFleet({ servers: 3, version: 'v1', defaults: { latencyMs: 5 } });
    // One held request per server (HAProxy balances round robin): whichever moves first can't drain.
    const held = new AbortController();
    const requests = Array.from({ length: 3 }, () =>
      fetch(`${fleet.haproxy.frontendUrl}/?delay=${heldMs}`, { signal: held.signal }).catch(() => undefined),
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    const spec = parseRolloutSpec({
      ...fleet.spec({ version: 'v2', strategy: { type: 'rolling', batchSize: 1 } }, name),
      drain: { timeout: '1h', onTimeout: 'wait' },
      ...extra,
    });
    const started = await startRolloutInProcess(testTemporal(), realActivityDeps(), spec);
    return {
      fleet,
      ...started,
      stop: async () => {
        held.abort();
        await Promise.all(requests);
        await started.stop();
      },
    };
  };

  const assertRestored = async (fleet: Awaited<ReturnType<typeof startFleet>>) => {
    assert.deepEqual(await hostVersions(fleet.dir), { 'web-1': 'v1', 'web-2': 'v1', 'web-3': 'v1' });
    const traffic = new HaproxyTrafficProvider(fleet.haproxy.socket, 'web');
    for (const server of ['web-1', 'web-2', 'web-3'])
      assert.match((await traffic.traffic(server)).status, inRotation, `${server} serves`);
  };

  it('abort: the rollback begins within seconds, and the drained server is back in rotation', async () => {
    const { fleet, handle, stop } = await drainsForever(`cut-abort-${Date.now() % 100_000}`, {});
    try {
      await settledIn(handle, (s) => s.servers.some((server) => server.step === 'drain'));
      await handle.executeUpdate(abortUpdate, { args: [{ by: 'ivy', reason: 'wrong build' }] });
      const waited = await untilRollbackBegins(handle);
      assert.ok(waited < promptlyMs, `the rollback began ${waited} ms after the abort`);
      const result = await handle.result();
      assert.equal(result.phase, 'rolled-back');
      assert.equal(result.reason, 'aborted by ivy: wrong build');
      assert.equal(
        result.servers.filter((s) => s.step === 'failed').length,
        0,
        'no server counted as failed',
      );
      await assertRestored(fleet);
    } finally {
      await stop();
    }
  });

  it('progress deadline: the stuck drain is aborted when the deadline passes, not when it ends', async () => {
    const started = Date.now();
    const { fleet, handle, stop } = await drainsForever(`cut-deadline-${Date.now() % 100_000}`, {
      progressDeadline: { timeout: '3s', action: 'abort' },
    });
    try {
      const result = await handle.result();
      const took = Date.now() - started;
      assert.equal(result.phase, 'rolled-back');
      assert.equal(result.reason, 'aborted by progress deadline: no progress for 3 s');
      assert.ok(
        took < heldMs - 5_000,
        `rolled back ${took} ms after the start, before the held request ended`,
      );
      await assertRestored(fleet);
    } finally {
      await stop();
    }
  });
});

describe('an abort or the progress deadline cuts a readiness wait short (real control plane)', () => {
  let cluster: LocalCluster;
  let kc: KubeConfig;
  let stopCluster: (() => Promise<void>) | undefined;
  let temporal: Awaited<ReturnType<typeof startTestCluster>>['temporal'];
  before(async () => {
    ({ cluster, kc, temporal, stop: stopCluster } = await startTestCluster('baton-cut-short'));
  });
  after(() => stopCluster?.());

  /** A rollout to pods that never become ready, with a readiness wait of ten minutes. */
  const neverReady = async (namespace: string, extra: Partial<RolloutSpecInput>) => {
    await seedApp(kc, namespace, { replicas: 4, image: seededImage });
    const spec = parseRolloutSpec({
      target: seededAppTarget(namespace, '10m'),
      version: cluster.pods.brokenTag,
      strategy: { type: 'rolling', maxSurge: '25%', maxUnavailable: '25%' },
      ...extra,
    });
    return startRolloutInProcess(
      temporal,
      { ...realActivityDeps(), kubernetes: () => kubernetesClients(kc) },
      spec,
    );
  };

  const assertRestored = async (namespace: string) => {
    const deployments = await deploymentsOf(kc, namespace);
    assert.deepEqual(
      Object.fromEntries(Object.entries(deployments).map(([name, d]) => [name, d.replicas])),
      { web: 4 },
      'the old Deployment is back to full and the new one gone',
    );
  };

  it('abort: the rollback begins within seconds of the abort', async () => {
    const { handle, stop } = await neverReady('cut-abort', {});
    try {
      await settledIn(
        handle,
        (s) => (s.kubernetes?.deployments.find((d) => d.role === 'next')?.replicas ?? 0) > 0,
      );
      await handle.executeUpdate(abortUpdate, { args: [{ by: 'ivy', reason: 'pods never ready' }] });
      const waited = await untilRollbackBegins(handle);
      assert.ok(waited < promptlyMs, `the rollback began ${waited} ms after the abort`);
      const result = await handle.result();
      assert.equal(result.phase, 'rolled-back');
      assert.equal(result.reason, 'aborted by ivy: pods never ready');
      await assertRestored('cut-abort');
    } finally {
      await stop();
    }
  });

  it('progress deadline: the wait is aborted when the deadline passes, not at readyTimeout', async () => {
    const started = Date.now();
    const { handle, stop } = await neverReady('cut-deadline', {
      progressDeadline: { timeout: '3s', action: 'abort' },
    });
    try {
      const result = await handle.result();
      const took = Date.now() - started;
      assert.equal(result.phase, 'rolled-back');
      assert.equal(result.reason, 'aborted by progress deadline: no progress for 3 s');
      assert.ok(took < 60_000, `rolled back ${took} ms after the start; readyTimeout is 10 minutes`);
      await assertRestored('cut-deadline');
    } finally {
      await stop();
    }
  });
});
