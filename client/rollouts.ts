import { setTimeout as sleep } from 'node:timers/promises';
import type { Client, WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
} from '@temporalio/client';
import type { RolloutSpec } from '../spec';
import type { rolloutWorkflow } from '../workflows';
import type { RolloutResult, RolloutStatus } from '../workflows/messages';
import { defaultTaskQueue, rolloutWorkflowId, searchAttributes, statusQuery } from '../workflows/messages';

export type RolloutHandle = WorkflowHandle<typeof rolloutWorkflow>;

/** Another rollout of the same target is running. */
export class RolloutConflictError extends Error {
  override readonly name = 'RolloutConflictError';
}

export class RolloutNotFoundError extends Error {
  override readonly name = 'RolloutNotFoundError';
}

/** How a rollout ended: its result, or why the workflow failed. */
export type RolloutOutcome =
  | { readonly kind: 'result'; readonly result: RolloutResult }
  | { readonly kind: 'failed'; readonly reason: string };

/** Starts the rollout of a validated spec; one live rollout per target. */
export async function startRollout(
  client: Client,
  spec: RolloutSpec,
  options: { taskQueue?: string } = {},
): Promise<WorkflowHandleWithFirstExecutionRunId<typeof rolloutWorkflow>> {
  const workflowId = rolloutWorkflowId(spec.target.name);
  try {
    return await client.workflow.start<typeof rolloutWorkflow>('rolloutWorkflow', {
      args: [spec],
      workflowId,
      taskQueue: options.taskQueue ?? defaultTaskQueue,
      staticSummary: `${spec.strategy.type} rollout of ${spec.target.name} to ${spec.version}`,
      typedSearchAttributes: [
        { key: searchAttributes.target, value: spec.target.name },
        { key: searchAttributes.strategy, value: spec.strategy.type },
        { key: searchAttributes.phase, value: 'starting' },
        { key: searchAttributes.toVersion, value: spec.version },
      ],
    });
  } catch (error) {
    if (error instanceof WorkflowExecutionAlreadyStartedError) {
      throw new RolloutConflictError(
        `a rollout of ${spec.target.name} is already running (workflow ${workflowId}); wait for it, or abort it first`,
      );
    }
    throw error;
  }
}

export function rolloutHandle(client: Client, target: string): RolloutHandle {
  return client.workflow.getHandle<typeof rolloutWorkflow>(rolloutWorkflowId(target));
}

export async function rolloutStatus(client: Client, target: string): Promise<RolloutStatus> {
  try {
    return await rolloutHandle(client, target).query(statusQuery);
  } catch (error) {
    if (error instanceof WorkflowNotFoundError)
      throw new RolloutNotFoundError(`no rollout of ${target} was found`);
    throw error;
  }
}

/**
 * Follows a rollout to its end, calling onStatus with each new state (polled through the status query), and
 * returns how it ended.
 */
export async function followRollout(
  handle: RolloutHandle,
  onStatus: (status: RolloutStatus) => void,
  intervalMs = 250,
): Promise<RolloutOutcome> {
  let finished = false;
  const outcome = handle.result().then(
    (result): RolloutOutcome => ({ kind: 'result', result }),
    (error: unknown): RolloutOutcome => ({
      kind: 'failed',
      reason: error instanceof WorkflowFailedError ? (error.cause?.message ?? error.message) : String(error),
    }),
  );
  void outcome.finally(() => (finished = true));
  while (!finished) {
    try {
      onStatus(await handle.query(statusQuery));
    } catch {
      // A query can fail while the first workflow task hasn't run yet; the next poll will tell.
    }
    await Promise.race([outcome, sleep(intervalMs)]);
  }
  try {
    onStatus(await handle.query(statusQuery));
  } catch {
    // The final state is in the outcome anyway.
  }
  return outcome;
}
