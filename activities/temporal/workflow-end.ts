import { Context } from '@temporalio/activity';
import { WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';

/** How often a wait on another workflow tells Temporal it is alive; its heartbeat timeout is a few of these. */
const heartbeatEveryMs = 5_000;

/**
 * Returns once workflow `workflowId` has ended, however it ended (completed, failed, cancelled, terminated by hand,
 * timed out), following it through continue-as-new, or at once when there is none. A lock waits on its holder with
 * it: a rollout terminated by hand runs no code, so it cannot release its lock itself.
 *
 * The wait is the server's long poll on the workflow's close event (`result()`), not a loop of reads; heartbeats
 * beside it let a dead worker's wait be taken over, and let a release cancel it.
 */
export async function awaitWorkflowEnd(workflowId: string): Promise<void> {
  const context = Context.current();
  const heartbeat = setInterval(() => context.heartbeat(), heartbeatEveryMs);
  try {
    await Promise.race([
      context.client.workflow
        .getHandle(workflowId)
        .result()
        .catch((error: unknown) => {
          // A failure, a cancellation, a termination or a timeout is an end; a lost connection is not.
          if (error instanceof WorkflowFailedError || error instanceof WorkflowNotFoundError) return;
          throw error;
        }),
      context.cancelled,
    ]);
  } finally {
    clearInterval(heartbeat);
  }
}
