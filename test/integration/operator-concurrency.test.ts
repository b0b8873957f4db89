import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client, Connection, WorkflowUpdateFailedError } from '@temporalio/client';
import { InMemoryFleet } from '../../activities/fakes/in-memory-fleet';
import type { RolloutSpecInput } from '../../spec';
import type { OperatorCommand, PromoteCommand } from '../../workflows/messages';
import { abortUpdate, pauseUpdate, promoteUpdate, statusQuery } from '../../workflows/messages';
import { startRolloutInProcess, until } from '../helpers/rollout';
import { inMemoryFleetSpec, serverNames } from '../helpers/specs';
import type { TestTemporal } from '../helpers/temporal';
import { connectTestTemporal } from '../helpers/temporal';

/** Two operators at two terminals: each has a connection and a client of their own. */
let temporal: TestTemporal;
const operators: Array<{ connection: Connection; client: Client }> = [];
before(async () => {
  temporal = await connectTestTemporal();
  for (let i = 0; i < 2; i++) {
    const connection = await Connection.connect({ address: temporal.address });
    operators.push({ connection, client: new Client({ connection, namespace: temporal.namespace }) });
  }
});
after(async () => {
  for (const { connection } of operators) await connection.close();
  await temporal.close();
});

type Verb = 'pause' | 'abort' | 'promote';
const updates = { pause: pauseUpdate, abort: abortUpdate, promote: promoteUpdate } as const;

/** Sends `verbs[i]` from operator i at the same moment; each is told accepted, or refused with a reason. */
async function atOnce(workflowId: string, verbs: readonly [Verb, Verb]) {
  const answers = await Promise.allSettled(
    verbs.map((verb, i) =>
      operators[i]?.client.workflow.getHandle(workflowId).executeUpdate(updates[verb], {
        args: [{ by: `operator-${i}`, reason: `${verb} ${i}` } as PromoteCommand],
      }),
    ),
  );
  return answers.map((answer, i) => {
    if (answer.status === 'fulfilled')
      return { verb: verbs[i], by: `operator-${i}`, accepted: true, why: '' };
    assert.ok(answer.reason instanceof WorkflowUpdateFailedError, String(answer.reason));
    return { verb: verbs[i], by: `operator-${i}`, accepted: false, why: answer.reason.cause?.message ?? '' };
  });
}

async function rollout(name: string, overrides: Partial<RolloutSpecInput> = {}) {
  const fleet = new InMemoryFleet(serverNames(4), 'v1', { upgradeMs: 300 });
  const spec = inMemoryFleetSpec(4, { strategy: { type: 'rolling', batchSize: 1 }, ...overrides }, name);
  const started = await startRolloutInProcess(temporal, fleet.deps(), spec);
  return { fleet, ...started };
}

describe('two operators at once: one outcome, and each is told the truth (real Temporal)', () => {
  for (const verb of ['pause', 'abort'] as const) {
    it(`two ${verb}s at the same moment: one accepted, the other refused saying why`, async () => {
      for (let round = 0; round < 3; round++) {
        const { handle, stop } = await rollout(`twice-${verb}-${round}`);
        try {
          await until(async () =>
            (await handle.query(statusQuery)).servers.some((s) => s.step !== 'pending'),
          );
          const answers = await atOnce(handle.workflowId, [verb, verb]);
          const accepted = answers.filter((a) => a.accepted);
          assert.equal(accepted.length, 1, JSON.stringify(answers));
          const refused = answers.find((a) => !a.accepted);
          assert.match(
            refused?.why ?? '',
            verb === 'pause' ? /already paused/ : /already aborting|rolling back/,
          );
          const status = await handle.query(statusQuery);
          assert.deepEqual(
            status.commands.map((c) => [c.command, c.by]),
            [[verb, accepted[0]?.by]],
            'the history holds the accepted one only',
          );
          if (verb === 'abort') {
            const result = await handle.result();
            assert.equal(result.phase, 'rolled-back');
            assert.equal(result.reason, `aborted by ${accepted[0]?.by}: abort ${accepted[0]?.by.slice(-1)}`);
          }
        } finally {
          await stop();
        }
      }
    });
  }

  it('pause and abort at the same moment: whatever was accepted holds, and the rollout rolls back', async () => {
    for (let round = 0; round < 3; round++) {
      const { handle, stop, fleet } = await rollout(`pause-abort-${round}`);
      try {
        await until(async () => (await handle.query(statusQuery)).servers.some((s) => s.step !== 'pending'));
        const answers = await atOnce(handle.workflowId, round % 2 ? ['abort', 'pause'] : ['pause', 'abort']);
        const abort = answers.find((a) => a.verb === 'abort');
        const pause = answers.find((a) => a.verb === 'pause');
        assert.equal(abort?.accepted, true, 'an abort is taken paused or not');
        if (!pause?.accepted) assert.match(pause?.why ?? '', /aborting|rolling back/);
        const result = await handle.result();
        assert.equal(result.phase, 'rolled-back');
        assert.ok(serverNames(4).every((name) => fleet.version(name) === 'v1'));
        const recorded = (await handle.query(statusQuery)).commands.map((c) => c.command).sort();
        assert.deepEqual(
          recorded,
          answers
            .filter((a) => a.accepted)
            .map((a) => a.verb)
            .sort(),
        );
      } finally {
        await stop();
      }
    }
  });

  it('two promotes at one gate: one passes it, the other is told it was promoted already', async () => {
    // Arriving in the same workflow task, the second finds the gate promoted; in the next, no gate at all.
    const { handle, stop } = await rollout('twice-promote', {
      strategy: { type: 'rolling', batchSize: 1, pauses: [{ after: 1 }, { after: 2 }] },
    });
    try {
      await until(async () => (await handle.query(statusQuery)).waiting?.at === 'approval after batch 1');
      const answers = await atOnce(handle.workflowId, ['promote', 'promote']);
      assert.equal(answers.filter((a) => a.accepted).length, 1, JSON.stringify(answers));
      assert.match(
        answers.find((a) => !a.accepted)?.why ?? '',
        /already promoted past approval after batch 1|nothing to promote: the rollout is progressing/,
      );
      // The second gate still waits: the refused promote did not wave it through.
      await until(async () => (await handle.query(statusQuery)).waiting?.at === 'approval after batch 2');
      const held = await handle.query(statusQuery);
      assert.equal(held.phase, 'paused');
      await handle.executeUpdate(abortUpdate, { args: [{ by: 'tidy' } satisfies OperatorCommand] });
      assert.equal((await handle.result()).phase, 'rolled-back');
    } finally {
      await stop();
    }
  });
});
