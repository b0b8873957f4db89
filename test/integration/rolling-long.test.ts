import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { InMemoryFleet } from '../../activities/fakes/in-memory-fleet';
import { fetchRolloutEvents } from '../../client/history';
import type { HistoryEvent } from '../../client/history';
import { abortUpdate, pauseUpdate, resumeUpdate, statusQuery } from '../../workflows/messages';
import type { TestTemporal } from '../helpers/temporal';
import { connectTestTemporal } from '../helpers/temporal';
import { inMemoryFleetSpec, serverNames } from '../helpers/specs';
import { startRolloutInProcess, until } from '../helpers/rollout';

let temporal: TestTemporal;
before(async () => {
  temporal = await connectTestTemporal();
});
after(async () => temporal.close());

/** A run's events, split where one run continued as new. */
function runsOf(events: readonly HistoryEvent[]): HistoryEvent[][] {
  const runs: HistoryEvent[][] = [];
  for (const event of events) {
    if (event.workflowExecutionStartedEventAttributes) runs.push([]);
    runs.at(-1)?.push(event);
  }
  return runs;
}

const maxEventsPerRun = 400;

/** The summary an activity was scheduled with ("upgrade web-3 to v1"). */
function summaryOf(event: HistoryEvent): string {
  const data = event.userMetadata?.summary?.data;
  return data ? (JSON.parse(Buffer.from(data).toString()) as string) : '';
}

/** The fleet and the rollout, on a worker of this test, with runs allowed only 400 events. */
async function startLong(servers: number, upgradeMs = 0) {
  const fleet = new InMemoryFleet(serverNames(servers), 'v1', upgradeMs ? { upgradeMs } : {});
  const spec = inMemoryFleetSpec(servers, { strategy: { type: 'rolling', batchSize: 4 } });
  const started = await startRolloutInProcess(temporal, fleet.deps(), spec, { maxEventsPerRun });
  const runs = async () =>
    runsOf(
      await fetchRolloutEvents(
        temporal.client,
        started.handle.workflowId,
        started.handle.firstExecutionRunId,
      ),
    );
  return { ...started, fleet, runs };
}

const upgrades = (fleet: InMemoryFleet, name: string, version: string) =>
  fleet.timeline(name).filter((step) => step === `upgrade:${version}`).length;

describe('a rollout longer than one run of history (continue-as-new with a cursor)', () => {
  it('moves 60 servers across several runs, each under its event limit, each server upgraded once', async () => {
    const { handle, stop, fleet, runs } = await startLong(60);
    try {
      const result = await handle.result();
      assert.equal(result.phase, 'succeeded');
      assert.equal(result.servers.length, 60);
      assert.ok(
        result.servers.every((s) => s.step === 'done' && s.version === 'v2' && s.fromVersion === 'v1'),
      );
      for (const name of serverNames(60))
        assert.equal(upgrades(fleet, name, 'v2'), 1, `${name} upgraded once`);
      const all = await runs();
      assert.ok(all.length >= 3, `${all.length} runs`);
      for (const run of all) assert.ok(run.length <= maxEventsPerRun, `a run of ${run.length} events`);
      // Later runs start where the last one stopped: no preflight again.
      const preflights = all
        .flat()
        .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'preflightFleet');
      assert.equal(preflights.length, 1);
    } finally {
      await stop();
    }
  });

  it('a pause sent in a later run holds the rollout; resume finishes it', async () => {
    const { handle, stop, fleet, runs } = await startLong(40, 20);
    try {
      await until(async () => (await runs()).length >= 2);
      const paused = await handle.executeUpdate(pauseUpdate, { args: [{ by: 'carol', reason: 'night' }] });
      assert.equal(paused.phase, 'paused');
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const held = await handle.query(statusQuery);
      assert.equal(held.phase, 'paused');
      const doneWhilePaused = held.servers.filter((s) => s.step === 'done').length;
      assert.ok(doneWhilePaused < 40, 'paused before the end');
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      assert.equal(
        (await handle.query(statusQuery)).servers.filter((s) => s.step === 'done').length,
        doneWhilePaused,
        'no server finished while paused',
      );
      await handle.executeUpdate(resumeUpdate, { args: [{ by: 'carol' }] });
      const result = await handle.result();
      assert.equal(result.phase, 'succeeded');
      assert.ok(serverNames(40).every((name) => fleet.version(name) === 'v2'));
      const status = await handle.query(statusQuery);
      assert.deepEqual(
        status.commands.map((c) => c.command),
        ['pause', 'resume'],
        'the commands are kept across runs',
      );
    } finally {
      await stop();
    }
  });

  it('an abort after several runs puts every server back on v1, the rollback itself spanning runs', async () => {
    const { handle, stop, fleet, runs } = await startLong(60, 10);
    try {
      await until(async () => (await runs()).length >= 3);
      await handle.executeUpdate(abortUpdate, { args: [{ by: 'dave', reason: 'errors up' }] });
      const result = await handle.result();
      assert.equal(result.phase, 'rolled-back');
      assert.match(result.reason ?? '', /aborted by dave: errors up/);
      for (const name of serverNames(60)) {
        assert.equal(fleet.version(name), 'v1', `${name} on v1`);
        assert.ok(upgrades(fleet, name, 'v2') <= 1, `${name} upgraded to v2 at most once`);
      }
      const moved = serverNames(60).filter((name) => upgrades(fleet, name, 'v2') === 1);
      assert.ok(moved.length >= 20, `${moved.length} servers had moved before the abort`);
      for (const name of moved) assert.equal(upgrades(fleet, name, 'v1'), 1, `${name} restored once`);
      const all = await runs();
      for (const run of all) assert.ok(run.length <= maxEventsPerRun, `a run of ${run.length} events`);
      const restoringRuns = all.filter((run) =>
        run.some((e) => /^upgrade web-\d+ to v1$/.test(summaryOf(e))),
      );
      assert.ok(restoringRuns.length >= 2, `the rollback ran in ${restoringRuns.length} runs`);
      assert.ok(result.servers.every((s) => s.version === 'v1'));
    } finally {
      await stop();
    }
  });
});
