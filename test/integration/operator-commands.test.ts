import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { InMemoryFleet } from '../../activities/fakes/in-memory-fleet';
import { delay } from '../../infra/processes';
import type { RolloutSpecInput } from '../../spec';
import type { RolloutStatus } from '../../workflows/messages';
import {
  abortSignal,
  abortUpdate,
  pauseUpdate,
  promoteUpdate,
  resumeUpdate,
  statusQuery,
} from '../../workflows/messages';
import { startRolloutInProcess, until } from '../helpers/rollout';
import { inMemoryFleetSpec, serverNames } from '../helpers/specs';
import type { TestTemporal } from '../helpers/temporal';
import { connectTestTemporal } from '../helpers/temporal';

let temporal: TestTemporal;
before(async () => {
  temporal = await connectTestTemporal();
});
after(async () => temporal.close());

/** Starts a rollout of `servers` in-memory servers, one per batch, each upgrade taking `upgradeMs`. */
async function startSlowRollout(
  name: string,
  servers: number,
  upgradeMs: number,
  overrides: Partial<RolloutSpecInput> = {},
) {
  const fleet = new InMemoryFleet(serverNames(servers), 'v1', { upgradeMs });
  const spec = inMemoryFleetSpec(
    servers,
    { strategy: { type: 'rolling', batchSize: 1 }, ...overrides },
    name,
  );
  const { handle, stop } = await startRolloutInProcess(temporal, fleet.deps(), spec);
  return { fleet, handle, stop };
}

const stepsTaken = (status: RolloutStatus) => status.servers.filter((s) => s.step !== 'pending').length;

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

describe('pauses, approval gates and the progress deadline of a spec (real Temporal, in-memory fleet)', () => {
  it('waits at an approval gate until promote, refusing resume there', async () => {
    const { handle, stop, fleet } = await startSlowRollout('gate-promote', 3, 50, {
      strategy: { type: 'rolling', batchSize: 1, pauses: [{ after: 1 }] },
    });
    try {
      await until(async () => (await handle.query(statusQuery)).phase === 'paused');
      const status = await handle.query(statusQuery);
      assert.deepEqual(status.waiting, { for: 'promote', at: 'approval after batch 1' });
      assert.deepEqual(
        status.servers.map((s) => s.step),
        ['done', 'pending', 'pending'],
      );
      await rejected(
        handle.executeUpdate(resumeUpdate, { args: [{}] }),
        /waits at approval after batch 1 for promote/,
      );
      await handle.executeUpdate(promoteUpdate, { args: [{ by: 'frank', reason: 'metrics fine' }] });
      assert.equal((await handle.result()).phase, 'succeeded');
      assert.ok(serverNames(3).every((name) => fleet.version(name) === 'v2'));
    } finally {
      await stop();
    }
  });

  it('rolls back when an approval gate times out with onTimeout abort', async () => {
    const { handle, stop, fleet } = await startSlowRollout('gate-timeout', 3, 50, {
      strategy: { type: 'rolling', batchSize: 1, pauses: [{ after: 1, timeout: '1s', onTimeout: 'abort' }] },
    });
    try {
      const result = await handle.result();
      assert.equal(result.phase, 'rolled-back');
      assert.equal(result.reason, 'the approval after batch 1 timed out after 1s with no promote');
      assert.ok(serverNames(3).every((name) => fleet.version(name) === 'v1'));
    } finally {
      await stop();
    }
  });

  it('a pause sent at a gate that then times out holds, shows paused, and a resume shows progressing', async () => {
    const { handle, stop, fleet } = await startSlowRollout('pause-at-gate', 3, 50, {
      strategy: {
        type: 'rolling',
        batchSize: 1,
        pauses: [{ after: 1, timeout: '1500ms', onTimeout: 'promote' }],
      },
    });
    try {
      await until(async () => (await handle.query(statusQuery)).waiting?.for === 'promote');
      const paused = await handle.executeUpdate(pauseUpdate, { args: [{ by: 'gina', reason: 'hold on' }] });
      assert.equal(paused.phase, 'paused');
      // The gate times out (and would promote) while the operator's pause holds.
      await delay(2_500);
      const held = await handle.query(statusQuery);
      assert.equal(held.phase, 'paused');
      assert.equal(held.waiting?.for, 'resume');
      assert.equal(held.waiting?.reason, 'hold on');
      assert.equal(stepsTaken(held), 1, 'no server started while paused');
      const resumed = await handle.executeUpdate(resumeUpdate, { args: [{ by: 'gina' }] });
      assert.equal(resumed.phase, 'progressing');
      assert.equal(resumed.waiting, undefined);
      assert.equal((await handle.result()).phase, 'succeeded');
      assert.ok(serverNames(3).every((name) => fleet.version(name) === 'v2'));
    } finally {
      await stop();
    }
  });

  it('ends a timed pause on its own, and promote --full waves through every pause ahead', async () => {
    const timed = await startSlowRollout('timed-pause', 3, 50, {
      strategy: { type: 'rolling', batchSize: 1, pauses: [{ after: 1, duration: '2s' }] },
    });
    try {
      const started = Date.now();
      await until(async () => (await timed.handle.query(statusQuery)).phase === 'paused');
      const waiting = (await timed.handle.query(statusQuery)).waiting;
      assert.equal(waiting?.at, 'pause after batch 1 (2s)');
      assert.ok(waiting?.until !== undefined && Date.parse(waiting.until) > started);
      assert.equal((await timed.handle.result()).phase, 'succeeded');
      assert.ok(Date.now() - started >= 2_000, 'the pause lasted its duration');
    } finally {
      await timed.stop();
    }

    const gated = await startSlowRollout('full-promote', 4, 50, {
      strategy: { type: 'rolling', batchSize: 1, pauses: [{ after: 1 }, { after: 2 }, { after: 3 }] },
    });
    try {
      await until(async () => (await gated.handle.query(statusQuery)).phase === 'paused');
      await gated.handle.executeUpdate(promoteUpdate, { args: [{ full: true }] });
      assert.equal((await gated.handle.result()).phase, 'succeeded');
      const status = await gated.handle.query(statusQuery);
      assert.deepEqual(
        status.commands.map((c) => [c.command, c.full]),
        [['promote', true]],
      );
    } finally {
      await gated.stop();
    }
  });

  it('aborts a rollout stuck past its progress deadline, or pauses it for an operator', async () => {
    const stuck = await startSlowRollout('deadline-abort', 3, 3_000, {
      progressDeadline: { timeout: '1s', action: 'abort' },
    });
    try {
      const result = await stuck.handle.result();
      assert.equal(result.phase, 'rolled-back');
      assert.equal(result.reason, 'aborted by progress deadline: no progress for 1 s');
      assert.ok(serverNames(3).every((name) => stuck.fleet.version(name) === 'v1'));
    } finally {
      await stuck.stop();
    }

    const held = await startSlowRollout('deadline-pause', 2, 2_000, {
      progressDeadline: { timeout: '1s', action: 'pause' },
    });
    try {
      await until(async () => (await held.handle.query(statusQuery)).phase === 'paused');
      const status = await held.handle.query(statusQuery);
      assert.equal(status.commands[0]?.by, 'progress deadline');
      await held.handle.executeUpdate(resumeUpdate, { args: [{}] });
      // Each 2 s upgrade outlasts the 1 s deadline again: resume until done, as an operator watching would.
      for (;;) {
        const now = await held.handle.query(statusQuery);
        if (now.phase === 'succeeded') break;
        if (now.phase === 'paused')
          await held.handle.executeUpdate(resumeUpdate, { args: [{}] }).catch(() => undefined);
        await delay(100);
      }
      assert.ok(serverNames(2).every((name) => held.fleet.version(name) === 'v2'));
    } finally {
      await held.stop();
    }
  });
});
