import {
  CancellationScope,
  condition,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { awaitWorkflowEnd } from '../activities/temporal/workflow-end';
import { lockHolderStartGraceMs, releaseLockSignal } from './messages';
import { holderWatchProfile } from './profiles';

const { awaitWorkflowEnd: holderEnded } = proxyActivities<{ awaitWorkflowEnd: typeof awaitWorkflowEnd }>(
  holderWatchProfile,
);

/**
 * One live rollout per piece of infrastructure, whatever the specs call it: the client starts this workflow,
 * whose id names the infrastructure, before the rollout, and Temporal refuses a second one with that id while it
 * runs. It ends when its holder says so at the rollout's end, or when its holder has ended without saying so
 * (terminated by hand, which runs no code). A client that finds it held by a rollout that is no longer running
 * (a lock taken before locks watched their holder, or one on a task queue no worker serves) ends it before taking it.
 */
export async function infrastructureLockWorkflow(
  holder: string,
  holderStartGraceMs = lockHolderStartGraceMs,
): Promise<void> {
  let released = false;
  setHandler(releaseLockSignal, (by) => {
    if (by === holder) released = true;
  });
  // Locks taken before this change wait for the signal alone.
  if (!patched('lock-watches-holder')) return condition(() => released);
  const watch = new CancellationScope();
  // Settles when the holder has ended, or, cancelled once the release came, quietly.
  const ended = watch
    // The holder's id may name runs that ended before this lock was taken: only one started since is the holder.
    .run(() =>
      holderEnded(holder, { startedFromMs: workflowInfo().startTime.getTime(), graceMs: holderStartGraceMs }),
    )
    .catch((error: unknown) => {
      if (!isCancellation(error)) throw error;
    });
  await Promise.race([condition(() => released), ended]);
  watch.cancel();
}
