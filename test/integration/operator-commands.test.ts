import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { InMemoryFleet } from '../../activities/fakes/in-memory-fleet';
import { delay } from '../../infra/processes';
import { createBatonWorker } from '../../worker/create-worker';
import type { rolloutWorkflow } from '../../workflows';
import type { RolloutStatus } from '../../workflows/messages';
import {
  abortSignal,
  abortUpdate,
  pauseUpdate,
  promoteUpdate,
  resumeUpdate,
  statusQuery,
} from '../../workflows/messages';
import { inMemoryFleetSpec, serverNames } from '../helpers/specs';
import type { TestTemporal } from '../helpers/temporal';
import { connectTestTemporal, uniqueTaskQueue, workflowBundle } from '../helpers/temporal';

let temporal: TestTemporal;
before(async () => {
  temporal = await connectTestTemporal();
});
after(async () => temporal.close());

/** Starts a rollout of `servers` in-memory servers, one per batch, each upgrade taking `upgradeMs`. */
async function startSlowRollout(name: string, servers: number, upgradeMs: number) {
  const fleet = new InMemoryFleet(serverNames(servers), 'v1', { upgradeMs });
  const taskQueue = uniqueTaskQueue('operator');
  const worker = await createBatonWorker({
    connection: temporal.nativeConnection,
    namespace: temporal.namespace,
    taskQueue,
    deps: fleet.deps(),
    workflowBundle: await workflowBundle(),
  });
  const running = worker.run();
  const handle = await temporal.client.workflow.start<typeof rolloutWorkflow>('rolloutWorkflow', {
    args: [inMemoryFleetSpec(servers, { strategy: { type: 'rolling', batchSize: 1 } }, name)],
    taskQueue,
    workflowId: `rollout/${name}/${Date.now()}`,
  });
  const stop = async () => {
    worker.shutdown();
    await running;
  };
  return { fleet, handle, stop };
}

const stepsTaken = (status: RolloutStatus) => status.servers.filter((s) => s.step !== 'pending').length;

async function until(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, 'timed out');
    await delay(50);
  }
}

async function rejected(send: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(send, (error: unknown) => {
    assert.ok(error instanceof WorkflowUpdateFailedError, String(error));
    assert.match(error.cause?.message ?? '', message);
    return true;
  });
}

describe('operator commands on a running rollout (real Temporal, in-memory fleet)', () => {
  it('pauses after the steps in flight, refuses what makes no sense, resumes, and finishes', async () => {
    const { handle, stop, fleet } = await startSlowRollout('op-pause', 4, 300);
    try {
      await until(async () => stepsTaken(await handle.query(statusQuery)) >= 1);
      const paused = await handle.executeUpdate(pauseUpdate, {
        args: [{ by: 'alice@laptop', reason: 'watch the error rate' }],
      });
      assert.equal(paused.phase, 'paused');
      assert.deepEqual(paused.waiting, {
        for: 'resume',
        at: 'operator pause',
        reason: 'watch the error rate',
      });
      await rejected(handle.executeUpdate(pauseUpdate, { args: [{}] }), /already paused/);

      // The server in flight finishes; no other starts while paused.
      await delay(1_000);
      const held = await handle.query(statusQuery);
      await delay(1_000);
      const later = await handle.query(statusQuery);
      assert.equal(stepsTaken(later), stepsTaken(held));
      assert.ok(stepsTaken(later) < 4, 'paused before the end');
      assert.equal(later.phase, 'paused');

      const resumed = await handle.executeUpdate(resumeUpdate, { args: [{ by: 'alice@laptop' }] });
      assert.equal(resumed.phase, 'progressing');
      await rejected(handle.executeUpdate(resumeUpdate, { args: [{}] }), /not paused/);
      await rejected(handle.executeUpdate(promoteUpdate, { args: [{}] }), /nothing to promote/);

      const result = await handle.result();
      assert.equal(result.phase, 'succeeded');
      assert.ok(serverNames(4).every((name) => fleet.version(name) === 'v2'));
      const status = await handle.query(statusQuery);
      assert.deepEqual(
        status.commands.map((c) => [c.command, c.by, c.reason]),
        [
          ['pause', 'alice@laptop', 'watch the error rate'],
          ['resume', 'alice@laptop', undefined],
        ],
      );
      // A finished workflow takes no update at all; the CLI says so before it tries (see cli.test.ts).
      await assert.rejects(handle.executeUpdate(abortUpdate, { args: [{}] }), /already completed/);
    } finally {
      await stop();
    }
  });

  it('aborts: every server the rollout changed goes back to the old version, and the result says who and why', async () => {
    const { handle, stop, fleet } = await startSlowRollout('op-abort', 5, 200);
    try {
      await until(async () => (await handle.query(statusQuery)).servers.some((s) => s.step === 'done'));
      await handle.executeUpdate(abortUpdate, { args: [{ by: 'bob@ci', reason: 'latency up' }] });
      await rejected(handle.executeUpdate(pauseUpdate, { args: [{}] }), /aborting|rolling back/);
      const result = await handle.result();
      assert.equal(result.phase, 'rolled-back');
      assert.equal(result.reason, 'aborted by bob@ci: latency up');
      assert.ok(
        serverNames(5).every((name) => fleet.version(name) === 'v1'),
        'every server back on v1',
      );
      assert.ok(result.servers.some((s) => s.step === 'restored'));
      assert.ok(
        result.servers.some((s) => s.step === 'pending'),
        'servers never reached were not touched',
      );
    } finally {
      await stop();
    }
  });

  it('takes the same commands as signals (temporal workflow signal), ignoring those that make no sense', async () => {
    const { handle, stop, fleet } = await startSlowRollout('op-signal', 4, 200);
    try {
      await until(async () => stepsTaken(await handle.query(statusQuery)) >= 1);
      await handle.signal(abortSignal, { by: 'carol', reason: 'by signal' });
      await handle.signal(abortSignal, { by: 'carol', reason: 'twice' });
      const result = await handle.result();
      assert.equal(result.phase, 'rolled-back');
      assert.equal(result.reason, 'aborted by carol: by signal');
      assert.ok(serverNames(4).every((name) => fleet.version(name) === 'v1'));
      const status = await handle.query(statusQuery);
      assert.equal(status.commands.length, 1, 'the second abort was ignored');
    } finally {
      await stop();
    }
  });
});
