import { ApplicationFailure, ContinueAsNew } from '@temporalio/workflow';
import { failureMessage } from '../fleet-steps';
import type { RolloutState } from '../state';

/** Ends a rollout that must not start: failed, with the reason, before anything changed. */
export function rejectBeforeAnyChange(state: RolloutState, problem: string): never {
  const reason = `rejected before any change: ${problem}`;
  state.setPhase('failed', reason);
  throw ApplicationFailure.nonRetryable(reason, 'PreflightFailed');
}

/** Runs a strategy's preflight; when it fails, the rollout ends as failed before any change. */
export async function preflightOrReject<T>(state: RolloutState, preflight: () => Promise<T>): Promise<T> {
  try {
    return await preflight();
  } catch (error) {
    return rejectBeforeAnyChange(state, failureMessage(error));
  }
}

/**
 * Undoes a stopped rollout: the phase is rolling-back while `undo` runs, then rolled-back; when undoing fails
 * too, the rollout fails with both reasons, for an operator to finish by hand.
 */
export async function rollBack(
  state: RolloutState,
  stopReason: string,
  undo: () => Promise<void>,
): Promise<void> {
  state.setPhase('rolling-back', stopReason);
  try {
    await undo();
  } catch (error) {
    // A long rollback goes on in the next run.
    if (error instanceof ContinueAsNew) throw error;
    const reason = `${stopReason}; the rollback did not complete: ${failureMessage(error)}`;
    state.setPhase('failed', reason);
    throw ApplicationFailure.nonRetryable(reason, 'RollbackIncomplete');
  }
  state.setPhase('rolled-back');
}
