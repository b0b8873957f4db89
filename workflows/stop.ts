import { ActivityFailure } from '@temporalio/workflow';

/**
 * Thrown by a forward step that must end the rollout: a server or pod that failed, a failed analysis, a gate that
 * timed out. The lifecycle catches it and rolls back with its message as the reason.
 */
export class RolloutStopped extends Error {
  override readonly name: string = 'RolloutStopped';
}

/** The message of the failure that ended an activity, without the SDK's wrapping ("Activity task failed"). */
export function failureMessage(error: unknown): string {
  if (error instanceof ActivityFailure && error.cause) return error.cause.message;
  if (error instanceof Error) return error.message;
  return String(error);
}
