import { Context } from '@temporalio/activity';
import { WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';

/** How often a wait on another workflow tells Temporal it is alive; its heartbeat timeout is a few of these. */
const heartbeatEveryMs = 5_000;
/** How often a wait looks again for a run that has not started yet. */
const lookAgainMs = 1_000;

/** A run that counts: one started at or after `startedFromMs`, looked for until `graceMs` after that. */
export interface AwaitedRun {
  readonly startedFromMs: number;
  readonly graceMs: number;
}

/**
 * Returns once workflow `workflowId` has ended, however it ended (completed, failed, cancelled, terminated by hand,
 * timed out), following it through continue-as-new. A lock waits on its holder with it: a rollout terminated by
 * hand runs no code, so it cannot release its lock itself.
 *
 * The lock starts before its holder does, and the holder's id may name earlier runs that have long ended: only a run
 * started from `run.startedFromMs` on is the holder. Until one has started the wait looks again, and it returns when
 * none has started within the grace (the client that took the lock did not start its rollout).
 *
 * The wait is the server's long poll on the workflow's close event (`result()`), not a loop of reads; heartbeats
 * beside it let a dead worker's wait be taken over, and let a release cancel it.
 */
export async function awaitWorkflowEnd(workflowId: string, run?: AwaitedRun): Promise<void> {
  const context = Context.current();
  const heartbeat = setInterval(() => context.heartbeat(), heartbeatEveryMs);
  const handle = context.client.workflow.getHandle(workflowId);
  try {
    while (run && !(await startedFrom(run.startedFromMs))) {
      if (Date.now() > run.startedFromMs + run.graceMs) return;
      // Throws when the wait is cancelled (the release came).
      await context.sleep(lookAgainMs);
    }
    await Promise.race([
      handle.result().catch((error: unknown) => {
        // A failure, a cancellation, a termination or a timeout is an end; a lost connection is not.
        if (error instanceof WorkflowFailedError || error instanceof WorkflowNotFoundError) return;
        throw error;
      }),
      context.cancelled,
    ]);
  } finally {
    clearInterval(heartbeat);
  }

  async function startedFrom(fromMs: number): Promise<boolean> {
    try {
      const latest = await handle.describe();
      return latest.startTime.getTime() >= fromMs;
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return false;
      throw error;
    }
  }
}
