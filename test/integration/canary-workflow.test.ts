import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { InMemoryFleet } from '../../activities/fakes/in-memory-fleet';
import { statusQuery } from '../../workflows/messages';
import type { TestTemporal } from '../helpers/temporal';
import { connectTestTemporal } from '../helpers/temporal';
import { inMemoryFleetSpec, serverNames } from '../helpers/specs';
import { runRollout, startRolloutInProcess, until } from '../helpers/rollout';

let temporal: TestTemporal;
before(async () => {
  temporal = await connectTestTemporal();
});
after(async () => temporal.close());

const canarySpec = (servers: number, steps: unknown[]) =>
  inMemoryFleetSpec(servers, { strategy: { type: 'canary', steps } as never });

describe('canary rollout of a fleet (real Temporal, in-memory fleet)', () => {
  it('grows the canary step by step, analyses it, then promotes everyone and gives the weights back', async () => {
    const fleet = new InMemoryFleet(serverNames(10), 'v1');
    const result = await runRollout(
      temporal,
      fleet.deps(),
      canarySpec(10, [
        { setWeight: 10 },
        { analysis: { window: '200ms' } },
        { setWeight: 30 },
        { analysis: { window: '200ms' } },
      ]),
    );
    assert.equal(result.phase, 'succeeded', result.reason);
    assert.ok(serverNames(10).every((name) => fleet.version(name) === 'v2'));
    assert.ok(
      serverNames(10).every((name) => fleet.weight(name) === 1),
      'every weight is back to 1',
    );
    // The first canary server moved before any other, the next two only after the first analysis.
    const upgrades = fleet.events.filter((e) => e.action === 'upgrade').map((e) => e.server);
    assert.deepEqual(upgrades.slice(0, 3), ['web-1', 'web-2', 'web-3']);
    assert.equal(new Set(upgrades).size, 10, 'each server upgraded once');
    assert.equal(fleet.maxOut, 1, 'one server out of rotation at a time');
  });

  it('a load balancer reloaded in every analysis window leaves no window to judge, and rolls back', async () => {
    const fleet = new InMemoryFleet(serverNames(4), 'v1');
    const { handle, stop } = await startRolloutInProcess(
      temporal,
      fleet.deps(),
      canarySpec(4, [{ setWeight: 10 }, { analysis: { window: '1s' } }]),
    );
    try {
      // A configuration management run reloading HAProxy twice a second, for as long as the analysis lasts
      await until(async () => ((await handle.query(statusQuery)).canary?.weight ?? 0) > 0);
      let reloading = true;
      const reloads = (async () => {
        while (reloading) {
          fleet.reload();
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
      })();
      const result = await handle.result();
      reloading = false;
      await reloads;
      assert.equal(result.phase, 'rolled-back');
      const analysis = (await handle.query(statusQuery)).canary?.analyses[0];
      assert.deepEqual(analysis?.problems, [
        'HAProxy was reloaded in each of 3 analysis windows: none could be judged',
      ]);
      assert.ok(
        serverNames(4).every((name) => fleet.version(name) === 'v1'),
        'all back on v1',
      );
    } finally {
      await stop();
    }
  });

  it('catches a canary that answers 5xx in its analysis and rolls back on its own', async () => {
    const fleet = new InMemoryFleet(serverNames(10), 'v1', { errorRates: { v2: 0.3 } });
    const { handle, stop } = await startRolloutInProcess(
      temporal,
      fleet.deps(),
      canarySpec(10, [{ setWeight: 20 }, { analysis: { window: '200ms' } }, { setWeight: 50 }]),
    );
    try {
      const result = await handle.result();
      assert.equal(result.phase, 'rolled-back');
      assert.match(result.reason ?? '', /analysis at step 2 failed: the canary's 5xx rate 30% is above 5%/);
      assert.ok(
        serverNames(10).every((name) => fleet.version(name) === 'v1'),
        'all back on v1',
      );
      assert.ok(
        serverNames(10).every((name) => fleet.weight(name) === 1),
        'weights restored',
      );
      const status = await handle.query(statusQuery);
      assert.equal(status.canary?.analyses.length, 1);
      assert.equal(status.canary?.analyses[0]?.passed, false);
      assert.equal(status.canary?.analyses[0]?.canary?.errorRate, 30);
      assert.equal(status.canary?.weight, 0);
      // Only the two canary servers ever ran v2.
      const upgraded = fleet.events.filter((e) => e.action === 'upgrade' && e.version === 'v2');
      assert.deepEqual(upgraded.map((e) => e.server).sort(), ['web-1', 'web-2']);
    } finally {
      await stop();
    }
  });

  it('waits at a pause step for promote, showing the weight it reached', async () => {
    const fleet = new InMemoryFleet(serverNames(4), 'v1');
    const { handle, stop } = await startRolloutInProcess(
      temporal,
      fleet.deps(),
      canarySpec(4, [{ setWeight: 25 }, { pause: {} }]),
    );
    try {
      await until(async () => (await handle.query(statusQuery)).phase === 'paused');
      const status = await handle.query(statusQuery);
      assert.equal(status.waiting?.for, 'promote');
      assert.equal(status.waiting?.at, 'approval at step 2');
      assert.equal(status.canary?.weight, 25);
      assert.equal(status.canary?.canaries, 1);
      assert.equal(fleet.version('web-2'), 'v1', 'nothing beyond the canary moved while paused');
      await handle.executeUpdate('promote', { args: [{ by: 'test' }] });
      const result = await handle.result();
      assert.equal(result.phase, 'succeeded');
      assert.ok(serverNames(4).every((name) => fleet.version(name) === 'v2'));
    } finally {
      await stop();
    }
  });
});
