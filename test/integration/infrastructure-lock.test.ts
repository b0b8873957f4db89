import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { WorkflowExecutionDescription, WorkflowHandle } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import { stringify } from 'yaml';
import { realActivityDeps } from '../../activities';
import type { LocalFleet } from '../../infra/fleet/local-fleet';
import { parseRolloutSpec } from '../../spec';
import { createBatonWorker } from '../../worker/create-worker';
import type { infrastructureLockWorkflow } from '../../workflows';
import { lockDivision, lockWorkflowId } from '../../workflows/messages';
import { startTestFleet } from '../helpers/fleet';
import type { Finished } from '../helpers/process';
import { runToEnd } from '../helpers/process';
import { until } from '../helpers/rollout';
import type { TestTemporal } from '../helpers/temporal';
import { connectTestTemporal, uniqueTaskQueue, workflowBundle } from '../helpers/temporal';

const root = join(__dirname, '..', '..');
const taskQueue = uniqueTaskQueue('lock');
let temporal: TestTemporal;
let worker: Worker;
let workerRun: Promise<void>;
let dir: string;
const fleets: LocalFleet[] = [];

before(async () => {
  temporal = await connectTestTemporal();
  dir = await mkdtemp(join(tmpdir(), 'baton-lock-'));
  worker = await createBatonWorker({
    connection: temporal.nativeConnection,
    namespace: temporal.namespace,
    taskQueue,
    deps: realActivityDeps(),
    workflowBundle: await workflowBundle(),
  });
  workerRun = worker.run();
});
after(async () => {
  worker.shutdown();
  await workerRun;
  for (const fleet of fleets) await fleet.stop();
  await temporal.close();
  await rm(dir, { recursive: true, force: true });
});

async function fleetOf(servers: number): Promise<LocalFleet> {
  // v9 never passes its health check: a rollout to it rolls back.
  const fleet = await startTestFleet({ servers, version: 'v1', versions: { v9: { healthStatus: 500 } } });
  fleets.push(fleet);
  return fleet;
}

/** Starts a rollout with the real `baton` bin, as a user does: it takes the lock. */
async function batonStart(name: string, spec: unknown, ...flags: string[]): Promise<Finished> {
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, stringify(spec));
  return runToEnd(process.execPath, [join(root, 'bin', 'baton.js'), 'start', '-f', file, ...flags], {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: temporal.namespace,
      BATON_TASK_QUEUE: taskQueue,
      NO_COLOR: '1',
    },
  });
}

function lockOf(fleet: LocalFleet) {
  const id = lockWorkflowId(
    { kind: 'fleet', loadBalancer: { haproxy: { socket: fleet.haproxy.socket, backend: 'web' } } },
    taskQueue,
  );
  return temporal.client.workflow.getHandle(id);
}

/** Takes a fleet's lock for `holder` as `baton start` does, without starting the holder. */
function takeLock(fleet: LocalFleet, holder: string, graceMs?: number) {
  return temporal.client.workflow.start<typeof infrastructureLockWorkflow>('infrastructureLockWorkflow', {
    args: graceMs === undefined ? [holder] : [holder, graceMs],
    workflowId: lockOf(fleet).workflowId,
    taskQueue,
    memo: { holder },
    typedSearchAttributes: [{ key: lockDivision.key, value: lockDivision.value }],
  });
}

/** Until the lock's watch on its holder runs: what would end it at once, were it to end it, has happened. */
async function untilWatching(lock: WorkflowHandle): Promise<void> {
  await until(async () => {
    const described = await lock.describe();
    const started = described.raw.pendingActivities?.some((a) => a.lastStartedTime) ?? false;
    return started || described.status.name !== 'RUNNING';
  }, 15_000);
}

/** The lock ended by itself, before or as its holder did, and its history says how. */
async function assertLockEnded(
  fleet: LocalFleet,
  holder: WorkflowExecutionDescription,
  endedBy: 'release' | 'watch',
): Promise<void> {
  const lock = lockOf(fleet);
  await until(async () => (await lock.describe()).status.name !== 'RUNNING', 15_000);
  const described = await lock.describe();
  assert.equal(described.status.name, 'COMPLETED', `the lock ${lock.workflowId} completed`);
  assert.equal(described.memo?.holder, holder.workflowId);
  const events = (await lock.fetchHistory()).events ?? [];
  const release = events.find((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'release');
  const watched = events.some(
    (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'awaitWorkflowEnd',
  );
  assert.ok(watched, 'the lock watched its holder');
  if (endedBy === 'release') {
    assert.ok(release, "the holder's release reached the lock");
    const releasedAt = Number(release.eventTime?.seconds ?? 0) * 1000 + (release.eventTime?.nanos ?? 0) / 1e6;
    assert.ok(
      releasedAt <= (holder.closeTime?.getTime() ?? 0),
      `the release reached the lock (${releasedAt}) before its holder ended (${holder.closeTime?.getTime()})`,
    );
  } else {
    assert.ok(!release, 'no release: the holder ran no code');
    assert.ok(
      events.some((e) => e.activityTaskCompletedEventAttributes),
      "the lock's watch saw its holder end",
    );
  }
}

describe('the lock on a piece of infrastructure ends with its rollout', () => {
  it('succeeded, rolled back or failed: the rollout releases its lock before it ends', async () => {
    const fleet = await fleetOf(2);
    const succeeded = await batonStart('lock-ok', fleet.spec({ version: 'v2' }, 'lock-ok'));
    assert.equal(succeeded.code, 0, succeeded.stderr);
    await assertLockEnded(
      fleet,
      await temporal.client.workflow.getHandle('rollout/lock-ok').describe(),
      'release',
    );

    const rolledBack = await batonStart('lock-back', fleet.spec({ version: 'v9' }, 'lock-back'));
    assert.equal(rolledBack.code, 1, rolledBack.stderr);
    assert.match(rolledBack.stdout + rolledBack.stderr, /rolled-back/);
    await assertLockEnded(
      fleet,
      await temporal.client.workflow.getHandle('rollout/lock-back').describe(),
      'release',
    );

    // A server the backend does not have: the preflight fails the rollout before anything changes.
    const input = fleet.spec({ version: 'v3' }, 'lock-failed');
    (input.target as { servers: Array<{ name: string; address: string }> }).servers.push({
      name: 'web-9',
      address: '127.0.0.1:9',
    });
    const failed = await batonStart('lock-failed', input);
    assert.notEqual(failed.code, 0, failed.stdout);
    const failedRollout = await temporal.client.workflow.getHandle('rollout/lock-failed').describe();
    assert.equal(failedRollout.status.name, 'FAILED');
    await assertLockEnded(fleet, failedRollout, 'release');
  });

  it('terminated by hand, which runs no code: the lock sees its holder end and ends too', async () => {
    const fleet = await fleetOf(3);
    const slow = { type: 'rolling', batchSize: 1, pauseBetweenBatches: '1m' } as const;
    const started = await batonStart(
      'lock-killed',
      fleet.spec({ version: 'v2', strategy: slow }, 'lock-killed'),
      '--detach',
    );
    assert.equal(started.code, 0, started.stderr);
    const rollout = temporal.client.workflow.getHandle('rollout/lock-killed');
    assert.equal((await lockOf(fleet).describe()).status.name, 'RUNNING', 'the rollout holds its lock');
    await rollout.terminate('an operator ended it by hand');
    await assertLockEnded(fleet, await rollout.describe(), 'watch');
  });

  it('taken before its holder starts: the lock waits for the new run, not an earlier one that ended', async () => {
    const fleet = await fleetOf(2);
    const earlier = await batonStart('lock-again', fleet.spec({ version: 'v2' }, 'lock-again'));
    assert.equal(earlier.code, 0, earlier.stderr);
    await until(async () => (await lockOf(fleet).describe()).status.name !== 'RUNNING', 15_000);

    // What `baton start` does, with time between its two steps: the lock, then (later) the rollout.
    const lock = await takeLock(fleet, 'rollout/lock-again');
    await untilWatching(lock);
    // The earlier run of rollout/lock-again has long ended; the lock holds on for the run to come.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    assert.equal((await lock.describe()).status.name, 'RUNNING', 'the lock waits for its holder to start');
    const refused = await batonStart('lock-other', fleet.spec({ version: 'v3' }, 'lock-other'), '--detach');
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(refused.stderr, /is being rolled out by lock-again/);

    const slow = { type: 'rolling', batchSize: 1, pauseBetweenBatches: '2s' } as const;
    const rollout = await temporal.client.workflow.start('rolloutWorkflow', {
      args: [parseRolloutSpec(fleet.spec({ version: 'v3', strategy: slow }, 'lock-again'))],
      workflowId: 'rollout/lock-again',
      taskQueue,
    });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.equal((await rollout.describe()).status.name, 'RUNNING');
    assert.equal((await lock.describe()).status.name, 'RUNNING', 'the lock is held while its holder runs');
    await rollout.result();
    await assertLockEnded(fleet, await rollout.describe(), 'release');
  });

  it('taken by a client that never started its rollout: the lock ends after the grace', async () => {
    const fleet = await fleetOf(1);
    const lock = await takeLock(fleet, 'rollout/lock-never', 3_000);
    await untilWatching(lock);
    assert.equal(
      (await lock.describe()).status.name,
      'RUNNING',
      'within the grace, the holder is on its way',
    );
    await until(async () => (await lock.describe()).status.name !== 'RUNNING', 15_000);
    assert.equal((await lock.describe()).status.name, 'COMPLETED');
    const started = await batonStart('lock-after', fleet.spec({ version: 'v2' }, 'lock-after'));
    assert.equal(started.code, 0, started.stderr);
  });

  it("Temporal's lists show rollouts, not locks, unless the locks' division is asked for", async () => {
    const fleet = await fleetOf(1);
    const done = await batonStart('lock-listed', fleet.spec({ version: 'v2' }, 'lock-listed'));
    assert.equal(done.code, 0, done.stderr);
    const lockId = lockOf(fleet).workflowId;
    const listed = async (query?: string) => {
      const ids: string[] = [];
      for await (const execution of temporal.client.workflow.list(query === undefined ? {} : { query }))
        ids.push(execution.workflowId);
      return ids;
    };
    await until(
      async () => (await listed(`TemporalNamespaceDivision = '${lockDivision.value}'`)).includes(lockId),
      10_000,
    );
    const all = await listed();
    assert.ok(all.includes('rollout/lock-listed'), 'the rollout is listed');
    assert.ok(
      !all.some((id) => id.startsWith('lock/')),
      `no lock in the default list: ${all.filter((id) => id.startsWith('lock/')).join(', ')}`,
    );
  });
});
