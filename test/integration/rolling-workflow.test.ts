import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { InMemoryFleet } from '../../activities/fakes/in-memory-fleet';
import type { RolloutSpec } from '../../spec';
import { createBatonWorker } from '../../worker/create-worker';
import { statusQuery } from '../../workflows/messages';
import type { RolloutResult } from '../../workflows/messages';
import type { rolloutWorkflow } from '../../workflows';
import type { TestTemporal } from '../helpers/temporal';
import { connectTestTemporal, uniqueTaskQueue, workflowBundle } from '../helpers/temporal';
import { inMemoryFleetSpec, serverNames } from '../helpers/specs';
import { runRollout } from '../helpers/rollout';
import { delay } from '../../infra/processes';

let temporal: TestTemporal;
before(async () => {
  temporal = await connectTestTemporal();
});
after(async () => temporal.close());

/** Runs one rollout on the real Temporal server, with the real activities over an in-memory fleet. */
const rollOut = (fleet: InMemoryFleet, spec: RolloutSpec): Promise<RolloutResult> =>
  runRollout(temporal, fleet.deps(), spec);

describe('rolling rollout of a fleet (real Temporal, in-memory fleet)', () => {
  it('leaves servers already on the version alone, as a retry after an interrupted rollout needs', async () => {
    const fleet = new InMemoryFleet(serverNames(4), 'v1');
    fleet.setVersion('web-2', 'v2');
    fleet.setVersion('web-3', 'v2');
    const result = await rollOut(
      fleet,
      inMemoryFleetSpec(4, { strategy: { type: 'rolling', batchSize: 1 } }),
    );
    assert.equal(result.phase, 'succeeded');
    assert.ok(serverNames(4).every((name) => fleet.version(name) === 'v2'));
    assert.deepEqual(fleet.timeline('web-2'), ['probe'], 'web-2 was only asked its version');
    assert.deepEqual(fleet.timeline('web-3'), ['probe']);
    assert.ok(fleet.timeline('web-1').includes('upgrade:v2'));
  });

  it('moves all 9 servers to v2, each detached, drained, upgraded, verified and attached in that order', async () => {
    const fleet = new InMemoryFleet(serverNames(9), 'v1', { inFlightOnDetach: 3 });
    const result = await rollOut(fleet, inMemoryFleetSpec(9));
    assert.equal(result.phase, 'succeeded');
    for (const name of serverNames(9)) {
      assert.equal(fleet.version(name), 'v2', `${name} version`);
      assert.deepEqual(
        fleet.timeline(name).slice(1),
        ['detach', 'drain-check', 'upgrade:v2', 'probe', 'attach'],
        `${name} steps`,
      );
    }
    assert.ok(result.servers.every((s) => s.step === 'done' && s.fromVersion === 'v1' && s.version === 'v2'));
  });

  it('never has more than the batch size out of rotation', async () => {
    const fleet = new InMemoryFleet(serverNames(9), 'v1', { upgradeMs: 20 });
    await rollOut(fleet, inMemoryFleetSpec(9, { strategy: { type: 'rolling', batchSize: 3 } }));
    assert.equal(fleet.maxOut, 3);
  });

  it('never has more than maxUnavailable out, even with larger batches', async () => {
    const fleet = new InMemoryFleet(serverNames(6), 'v1', { upgradeMs: 20 });
    await rollOut(
      fleet,
      inMemoryFleetSpec(6, { strategy: { type: 'rolling', batchSize: '50%', maxUnavailable: 1 } }),
    );
    assert.equal(fleet.maxOut, 1);
    assert.ok(serverNames(6).every((n) => fleet.version(n) === 'v2'));
  });

  it('rolls every changed server back to v1 when v2 fails verification', async () => {
    const fleet = new InMemoryFleet(serverNames(5), 'v1', { brokenVersions: ['v2'] });
    const result = await rollOut(fleet, inMemoryFleetSpec(5));
    assert.equal(result.phase, 'rolled-back');
    assert.match(result.reason ?? '', /failure budget of 0%.*web-[12] failed verification for v2/s);
    for (const name of serverNames(5)) assert.equal(fleet.version(name), 'v1', `${name} back on v1`);
    // The first batch was touched and restored; later batches were never started.
    assert.deepEqual(fleet.timeline('web-1').slice(-3), ['upgrade:v1', 'probe', 'attach']);
    assert.ok(!fleet.timeline('web-5').includes('detach'), 'web-5 was never taken out');
  });

  it('within the failure budget, restores only the failed server and finishes the rest', async () => {
    const fleet = new InMemoryFleet(serverNames(10), 'v1', { failingUpgrades: { 'web-4': 'v2' } });
    const result = await rollOut(fleet, inMemoryFleetSpec(10, { failureBudget: { maxFailPercent: 10 } }));
    assert.equal(result.phase, 'succeeded');
    assert.equal(fleet.version('web-4'), 'v1');
    assert.equal(result.servers.find((s) => s.name === 'web-4')?.step, 'restored');
    assert.ok(
      serverNames(10)
        .filter((n) => n !== 'web-4')
        .every((n) => fleet.version(n) === 'v2'),
    );
    assert.deepEqual(fleet.timeline('web-4').slice(-1), ['attach']);
  });

  it('rejects a fleet the load balancer does not know before changing anything', async () => {
    const fleet = new InMemoryFleet(serverNames(2), 'v1');
    const spec = inMemoryFleetSpec(3);
    await assert.rejects(rollOut(fleet, spec), (error: unknown) => {
      assert.ok(error instanceof WorkflowFailedError);
      assert.match(String(error.cause?.message), /rejected before any change: .*no server named web-3/s);
      return true;
    });
    assert.ok(!fleet.events.some((e) => e.action !== 'probe'), 'nothing but probes happened');
  });

  it('answers the status query while running and after', async () => {
    const fleet = new InMemoryFleet(serverNames(2), 'v1', { upgradeMs: 300 });
    const taskQueue = uniqueTaskQueue('status');
    const worker = await createBatonWorker({
      connection: temporal.nativeConnection,
      namespace: temporal.namespace,
      taskQueue,
      deps: fleet.deps(),
      workflowBundle: await workflowBundle(),
    });
    await worker.runUntil(async () => {
      const handle = await temporal.client.workflow.start<typeof rolloutWorkflow>('rolloutWorkflow', {
        args: [inMemoryFleetSpec(2, { strategy: { type: 'rolling', batchSize: 1 } }, 'status-web')],
        taskQueue,
        workflowId: `rollout/status-web-${Date.now()}`,
      });
      let sawUpgrade = false;
      while (!sawUpgrade) {
        const status = await handle.query(statusQuery);
        sawUpgrade = status.servers.some((s) => s.step === 'upgrade');
        if (!sawUpgrade) await delay(20);
      }
      await handle.result();
      const final = await handle.query(statusQuery);
      assert.equal(final.phase, 'succeeded');
      assert.equal(final.batches, 2);
      assert.deepEqual(
        final.servers.map((s) => s.step),
        ['done', 'done'],
      );
    });
  });
});
