import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultPayloadConverter } from '@temporalio/common';
import { InMemoryFleet } from '../../activities/fakes/in-memory-fleet';
import { realActivityDeps } from '../../activities';
import { countStarts, hostVersions } from '../../infra/fleet/hosts';
import { startLoad } from '../../infra/load';
import { parseRolloutSpec } from '../../spec';
import type { RolloutSpec } from '../../spec';
import type { RolloutRun } from '../../workflows/continuation';
import { useFleets } from '../helpers/fleet';
import { inMemoryFleetSpec, serverNames } from '../helpers/specs';
import { startRolloutInProcess, until } from '../helpers/rollout';
import { pauseUpdate, resumeUpdate, statusQuery } from '../../workflows/messages';

const { temporal, fleet: realFleet } = useFleets();

type Handle = Awaited<ReturnType<typeof startRolloutInProcess>>['handle'];

async function rollOut(
  deps: Parameters<typeof startRolloutInProcess>[1],
  spec: RolloutSpec,
  run: RolloutRun = {},
  steer?: (handle: Handle) => Promise<void>,
) {
  const { handle, stop } = await startRolloutInProcess(temporal(), deps, spec, run);
  try {
    await steer?.(handle);
    const result = await handle.result();
    const history = await handle.fetchHistory();
    // Activities and local activities, in history order; a local one is marked "(local)".
    const activities = (history.events ?? []).flatMap((e) => {
      const type = e.activityTaskScheduledEventAttributes?.activityType?.name;
      if (type) return [type];
      const marker = e.markerRecordedEventAttributes;
      const data =
        marker?.markerName === 'core_local_activity' ? marker.details?.data?.payloads?.[0] : undefined;
      if (!data) return [];
      return [
        `${defaultPayloadConverter.fromPayload<{ activity_type: string }>(data).activity_type} (local)`,
      ];
    });
    return { result, activities };
  } finally {
    await stop();
  }
}

describe('bulk steps: many servers out at once move as a group, one activity per step', () => {
  it('moves 30 servers in batches of 10 with an activity per step, each group handing over to the next in one local command', async () => {
    const fleet = new InMemoryFleet(serverNames(30), 'v1', { upgradeMs: 5 });
    const { result, activities } = await rollOut(
      fleet.deps(),
      inMemoryFleetSpec(30, { strategy: { type: 'rolling', batchSize: 10 } }, 'bulk-ok'),
    );
    assert.equal(result.phase, 'succeeded');
    assert.deepEqual(activities, [
      'preflightFleet',
      // Which HAProxy process holds the backend, to tell a reload later.
      'restoreLoadBalancer',
      'detachServers (local)',
      ...Array.from({ length: 2 }, () => [
        'drainServers',
        'upgradeServers',
        'verifyServers',
        'handOverServers (local)',
      ]).flat(),
      'drainServers',
      'upgradeServers',
      'verifyServers',
      'attachServers (local)',
    ]);
    // Each handover brought its group back before the next one left.
    for (const [last, next] of [
      ['web-10', 'web-11'],
      ['web-20', 'web-21'],
    ]) {
      const attached = fleet.events.findIndex((e) => e.server === last && e.action === 'attach');
      const detached = fleet.events.findIndex((e) => e.server === next && e.action === 'detach');
      assert.ok(attached >= 0 && attached < detached, `${last} attached before ${next} detached`);
    }
    assert.equal(fleet.maxOut, 10);
    for (const name of serverNames(30)) {
      assert.deepEqual(
        fleet.timeline(name).slice(1),
        ['detach', 'drain-check', 'upgrade:v2', 'probe', 'attach'],
        name,
      );
      assert.equal(fleet.version(name), 'v2');
    }
    assert.ok(result.servers.every((s) => s.step === 'done' && s.version === 'v2'));
  });

  it("no handover across a pause: the spec's pause after a batch, or a wait between batches, finds the group back in rotation", async () => {
    const twoSteps = ['detachServers (local)', 'drainServers', 'upgradeServers', 'verifyServers'];
    for (const strategy of [
      { type: 'rolling' as const, batchSize: 10, pauses: [{ after: 1, duration: '300ms' }] },
      { type: 'rolling' as const, batchSize: 10, pauseBetweenBatches: '300ms' },
    ]) {
      const fleet = new InMemoryFleet(serverNames(20), 'v1');
      const { result, activities } = await rollOut(
        fleet.deps(),
        inMemoryFleetSpec(20, { strategy }, `bulk-pause-${Object.keys(strategy).join('-')}`),
      );
      assert.equal(result.phase, 'succeeded');
      assert.deepEqual(activities, [
        'preflightFleet',
        'restoreLoadBalancer',
        ...twoSteps,
        'attachServers (local)',
        // Beside the pause: what the rollout set on HAProxy is held against a reload.
        'holdLoadBalancer',
        ...twoSteps,
        'attachServers (local)',
      ]);
    }
  });

  it("an operator's pause during a group holds with every server back in rotation, and resume goes on", async () => {
    const fleet = new InMemoryFleet(serverNames(20), 'v1', { upgradeMs: 400 });
    const { result, activities } = await rollOut(
      fleet.deps(),
      inMemoryFleetSpec(20, { strategy: { type: 'rolling', batchSize: 10 } }, 'bulk-operator-pause'),
      {},
      async (handle) => {
        await until(async () => (await handle.query(statusQuery)).servers.some((s) => s.step === 'upgrade'));
        await handle.executeUpdate(pauseUpdate, { args: [{ by: 'erin' }] });
        await until(
          async () =>
            (await handle.query(statusQuery)).servers.find((s) => s.name === 'web-10')?.step === 'done',
        );
        // Held: the first group back in rotation, the second not started.
        await new Promise((resolve) => setTimeout(resolve, 500));
        assert.deepEqual(fleet.outOfRotation(), []);
        assert.ok(fleet.events.every((e) => !(e.server === 'web-11' && e.action === 'detach')));
        assert.equal((await handle.query(statusQuery)).phase, 'paused');
        await handle.executeUpdate(resumeUpdate, { args: [{ by: 'erin' }] });
      },
    );
    assert.equal(result.phase, 'succeeded');
    assert.ok(!activities.includes('handOverServers (local)'), activities.join(', '));
    for (const name of serverNames(20)) assert.equal(fleet.version(name), 'v2', name);
  });

  it('a handover that fails brings both groups back into rotation; the next group then starts on its own', async () => {
    const fleet = new InMemoryFleet(serverNames(20), 'v1', { failFirstDetach: ['web-15'] });
    const { result, activities } = await rollOut(
      fleet.deps(),
      inMemoryFleetSpec(20, { strategy: { type: 'rolling', batchSize: 10 } }, 'bulk-handover-fails'),
    );
    assert.equal(result.phase, 'succeeded', result.reason);
    assert.deepEqual(activities.slice(5), [
      'verifyServers',
      'handOverServers (local)',
      'attachServers (local)',
      'detachServers (local)',
      'drainServers',
      'upgradeServers',
      'verifyServers',
      'attachServers (local)',
    ]);
    assert.equal(fleet.maxOut, 10);
    for (const name of serverNames(20)) {
      assert.equal(fleet.version(name), 'v2', name);
      const upgrades = fleet.timeline(name).filter((step) => step.startsWith('upgrade'));
      assert.deepEqual(upgrades, ['upgrade:v2'], name);
    }
    // The failed handover's detaches were undone before the second group started as usual.
    const failed = fleet.events.findIndex((e) => e.action === 'detach-failed');
    const backIn = fleet.events.findIndex(
      (e, i) => i > failed && e.server === 'web-11' && e.action === 'attach',
    );
    assert.ok(failed >= 0 && backIn > failed);
  });

  it('a server whose upgrade fails leaves its group alone: put back on v1, the others go on', async () => {
    const fleet = new InMemoryFleet(serverNames(20), 'v1', { failingUpgrades: { 'web-4': 'v2' } });
    const { result } = await rollOut(
      fleet.deps(),
      inMemoryFleetSpec(
        20,
        { strategy: { type: 'rolling', batchSize: 10 }, failureBudget: { maxFailPercent: 10 } },
        'bulk-one-fails',
      ),
    );
    assert.equal(result.phase, 'succeeded');
    assert.equal(fleet.version('web-4'), 'v1');
    assert.equal(result.servers.find((s) => s.name === 'web-4')?.step, 'restored');
    for (const name of serverNames(20).filter((n) => n !== 'web-4'))
      assert.equal(fleet.version(name), 'v2', name);
  });

  it('a version that fails verification everywhere is rolled back on every server, past the budget', async () => {
    const fleet = new InMemoryFleet(serverNames(20), 'v1', { brokenVersions: ['v2'] });
    const { result } = await rollOut(
      fleet.deps(),
      inMemoryFleetSpec(
        20,
        {
          strategy: { type: 'rolling', batchSize: 10 },
          verify: { http: { passes: 1, interval: '10ms', timeout: '200ms' } },
        },
        'bulk-broken',
      ),
    );
    assert.equal(result.phase, 'rolled-back');
    assert.match(result.reason ?? '', /past the failure budget of 0%/);
    for (const name of serverNames(20)) assert.equal(fleet.version(name), 'v1', name);
    // The second batch never started.
    assert.ok(
      serverNames(20)
        .slice(10)
        .every((name) => !fleet.timeline(name).includes('detach')),
    );
  });

  it('on real HAProxy and real processes under load, groups of three move with no failed request', async () => {
    const fleet = await realFleet({
      servers: 6,
      version: 'v1',
      defaults: { latencyMs: 10, startupMs: 1_500 },
    });
    const load = startLoad({ url: `${fleet.haproxy.frontendUrl}/`, ratePerSecond: 150 });
    const { result, activities } = await rollOut(
      realActivityDeps(),
      parseRolloutSpec(fleet.spec({ version: 'v2', strategy: { type: 'rolling', batchSize: 3 } })),
      { bulkFrom: 3 },
    );
    const stats = await load.stop();
    assert.equal(result.phase, 'succeeded');
    assert.ok(activities.includes('upgradeServers') && !activities.includes('upgradeServer'));
    assert.ok(Object.values(await hostVersions(fleet.dir)).every((v) => v === 'v2'));
    const v2Starts = (await countStarts(fleet.dir)).filter((s) => s.version === 'v2');
    assert.deepEqual(v2Starts.map((s) => s.name).sort(), fleet.servers.map((s) => s.name).sort());
    assert.ok(stats.sent > 300, `sent ${stats.sent}`);
    assert.equal(stats.failed, 0, `failed requests: ${JSON.stringify(stats.errors)}`);
  });
});
