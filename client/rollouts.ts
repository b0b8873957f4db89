import { setTimeout as sleep } from 'node:timers/promises';
import type { Client, WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import type { RolloutSpec } from '../spec';
import type {
  InfrastructureLockWorkflow,
  PromoteCommand,
  RolloutResult,
  RolloutStatus,
  RolloutWorkflow,
} from '../workflows/messages';
import {
  abortUpdate,
  defaultTaskQueue,
  endedRefusal,
  lockDivision,
  lockHolderStartGraceMs,
  lockWorkflowId,
  pauseUpdate,
  promoteUpdate,
  releaseLockSignal,
  resumeUpdate,
  rolloutWorkflowId,
  searchAttributes,
  statusQuery,
} from '../workflows/messages';

export type RolloutHandle = WorkflowHandle<RolloutWorkflow>;

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
/** Who started a rollout, and how; kept in the workflow's memo, so its history and the Temporal UI show it. */
export interface StartedBy {
  readonly by: string;
  readonly via: 'start' | 'retry' | 'undo';
}

export interface StartOptions {
  readonly taskQueue?: string;
  readonly startedBy?: StartedBy;
}

export async function startRollout(
  client: Client,
  spec: RolloutSpec,
  options: StartOptions = {},
): Promise<WorkflowHandleWithFirstExecutionRunId<RolloutWorkflow>> {
  const workflowId = rolloutWorkflowId(spec.target.name);
  const taskQueue = options.taskQueue ?? defaultTaskQueue;
  const lock = await lockInfrastructure(client, spec, workflowId, taskQueue);
  try {
    return await client.workflow.start<RolloutWorkflow>('rolloutWorkflow', {
      args: [spec],
      workflowId,
      taskQueue,
      staticSummary: `${spec.strategy.type} rollout of ${spec.target.name} to ${spec.version}`,
      ...(options.startedBy ? { memo: { startedBy: options.startedBy.by, via: options.startedBy.via } } : {}),
      typedSearchAttributes: [
        { key: searchAttributes.target, value: spec.target.name },
        { key: searchAttributes.strategy, value: spec.strategy.type },
        { key: searchAttributes.phase, value: 'starting' },
        { key: searchAttributes.toVersion, value: spec.version },
      ],
    });
  } catch (error) {
    await lock.signal(releaseLockSignal, workflowId).catch(() => undefined);
    if (error instanceof WorkflowExecutionAlreadyStartedError) {
      throw new RolloutConflictError(
        `a rollout of ${spec.target.name} is already running (workflow ${workflowId}); wait for it, or abort it first`,
      );
    }
    throw error;
  }
}

/** What a spec changes, in words for a refusal. */
function infrastructureOf(spec: RolloutSpec): string {
  const { target } = spec;
  return target.kind === 'fleet'
    ? `backend ${target.loadBalancer.haproxy.backend} of HAProxy ${target.loadBalancer.haproxy.socket}`
    : `Deployment ${target.namespace}/${target.deployment}`;
}

/**
 * Takes the lock on the infrastructure the spec changes, for the rollout `holder`. A lock held by a rollout that
 * is running refuses the start, naming it; one left by a rollout that no longer runs (terminated by hand, so it
 * could not release it) is ended and taken.
 */
async function lockInfrastructure(
  client: Client,
  spec: RolloutSpec,
  holder: string,
  taskQueue: string,
): Promise<WorkflowHandle<InfrastructureLockWorkflow>> {
  const lockId = lockWorkflowId(spec.target, taskQueue);
  for (let attempt = 0; ; attempt++) {
    try {
      return await client.workflow.start<InfrastructureLockWorkflow>('infrastructureLockWorkflow', {
        args: [holder],
        workflowId: lockId,
        taskQueue,
        memo: { holder },
        staticSummary: `${infrastructureOf(spec)}, held by ${holder}`,
        typedSearchAttributes: [{ key: lockDivision.key, value: lockDivision.value }],
      });
    } catch (error) {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError) || attempt > 0) throw error;
    }
    const lock = client.workflow.getHandle<InfrastructureLockWorkflow>(lockId);
    const { memo, startTime: lockedAt } = await lock.describe();
    const heldBy = typeof memo?.holder === 'string' ? memo.holder : undefined;
    const holderRun =
      heldBy === undefined
        ? undefined
        : await client.workflow
            .getHandle(heldBy)
            .describe()
            .catch(() => undefined);
    // The lock is taken before its holder starts: a holder with no run since is still on its way, for a while.
    const startedSince = holderRun !== undefined && holderRun.startTime >= lockedAt;
    const onItsWay = !startedSince && Date.now() - lockedAt.getTime() < lockHolderStartGraceMs;
    const running = heldBy !== undefined && (holderRun?.status.name === 'RUNNING' || onItsWay);
    if (running && heldBy !== undefined) {
      if (heldBy === holder)
        throw new RolloutConflictError(
          `a rollout of ${spec.target.name} is already running (workflow ${holder}); wait for it, or abort it first`,
        );
      const name = heldBy.replace(/^rollout\//, '');
      throw new RolloutConflictError(
        `${infrastructureOf(spec)} is being rolled out by ${name} (workflow ${heldBy}), whatever this spec calls it: \`baton watch ${name}\` follows it, \`baton abort ${name}\` rolls it back`,
      );
    }
    await lock.terminate(`its holder ${heldBy ?? '(unknown)'} is no longer running`).catch(() => undefined);
  }
}

export function rolloutHandle(client: Client, target: string): RolloutHandle {
  return client.workflow.getHandle<RolloutWorkflow>(rolloutWorkflowId(target));
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

/** The rollout refused an operator command, with its reason (not paused, already aborting, finished). */
export class RolloutCommandRejectedError extends Error {
  override readonly name = 'RolloutCommandRejectedError';
}

export type OperatorVerb = 'pause' | 'resume' | 'promote' | 'abort';

const updates = {
  pause: pauseUpdate,
  resume: resumeUpdate,
  promote: promoteUpdate,
  abort: abortUpdate,
} as const;

/**
 * Sends an operator command as an update and returns the rollout's state once it accepted it; a refusal comes
 * back at once as RolloutCommandRejectedError with the rollout's reason.
 */
export async function commandRollout(
  client: Client,
  target: string,
  verb: OperatorVerb,
  command: PromoteCommand,
): Promise<RolloutStatus> {
  const handle = rolloutHandle(client, target);
  /** A closed workflow takes no update: the refusal comes from here, in the rollout's own words. */
  const refusedIfEnded = async () => {
    const description = await handle.describe();
    if (description.status.name === 'RUNNING') return;
    const phase =
      description.status.name === 'COMPLETED'
        ? (await handle.result()).phase
        : description.status.name.toLowerCase();
    throw new RolloutCommandRejectedError(`${verb} refused: ${endedRefusal(target, phase)}`);
  };
  try {
    for (let attempt = 0; ; attempt++) {
      await refusedIfEnded();
      try {
        return await handle.executeUpdate(updates[verb], { args: [command] });
      } catch (error) {
        // The run closed as the update arrived ("aborted by closing workflow", "already completed"): the
        // rollout ended (refused above, on the next turn), or goes on in a new run (continue-as-new), which gets
        // the command.
        if (!(error instanceof WorkflowNotFoundError) || attempt >= 3) throw error;
      }
    }
  } catch (error) {
    if (error instanceof WorkflowNotFoundError)
      throw new RolloutNotFoundError(`no rollout of ${target} was found`);
    if (error instanceof WorkflowUpdateFailedError)
      throw new RolloutCommandRejectedError(`${verb} refused: ${error.cause?.message ?? error.message}`);
    throw error;
  }
}

export interface RolloutListing {
  readonly target: string;
  readonly strategy?: string;
  readonly phase?: string;
  readonly fromVersion?: string;
  readonly toVersion?: string;
  readonly status: string;
  readonly started: string;
  readonly closed?: string;
  readonly workflowId: string;
  readonly runId: string;
}

/** A list-filter value, quoted for Temporal's visibility query language. */
const quoted = (value: string) => `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** Rollouts, newest first, filtered by phase and target through Baton's search attributes. */
export async function listRollouts(
  client: Client,
  filter: { phase?: string; target?: string; limit: number },
): Promise<RolloutListing[]> {
  // A long rollout's earlier runs (continued as new) are part of the rollout its latest run stands for.
  const clauses = [`WorkflowType = 'rolloutWorkflow'`, `ExecutionStatus != 'ContinuedAsNew'`];
  if (filter.phase) clauses.push(`${searchAttributes.phase.name} = ${quoted(filter.phase)}`);
  if (filter.target) clauses.push(`${searchAttributes.target.name} = ${quoted(filter.target)}`);
  const listed: RolloutListing[] = [];
  for await (const info of client.workflow.list({ query: clauses.join(' AND ') })) {
    const attribute = (key: (typeof searchAttributes)[keyof typeof searchAttributes]) =>
      info.typedSearchAttributes.get(key);
    listed.push({
      target: attribute(searchAttributes.target) ?? info.workflowId.replace(/^rollout\//, ''),
      strategy: attribute(searchAttributes.strategy),
      phase: attribute(searchAttributes.phase),
      fromVersion: attribute(searchAttributes.fromVersion),
      toVersion: attribute(searchAttributes.toVersion),
      status: info.status.name,
      started: info.startTime.toISOString(),
      ...(info.closeTime ? { closed: info.closeTime.toISOString() } : {}),
      workflowId: info.workflowId,
      runId: info.runId,
    });
    if (listed.length >= filter.limit) break;
  }
  return listed;
}

/** The last rollout of a target as Temporal keeps it: its spec, how it ended, and the version it started from. */
export interface PastRollout {
  readonly spec: RolloutSpec;
  readonly runId: string;
  /** Temporal's status: RUNNING, COMPLETED, FAILED, TERMINATED, ... */
  readonly status: string;
  /** For completed runs: succeeded or rolled-back. */
  readonly phase?: string;
  readonly fromVersion?: string;
}

export async function lastRollout(client: Client, target: string): Promise<PastRollout> {
  const handle = rolloutHandle(client, target);
  try {
    const description = await handle.describe();
    const history = await handle.fetchHistory();
    const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    const input = started?.input?.payloads?.[0];
    if (!input) throw new RolloutNotFoundError(`the last rollout of ${target} has no spec in its history`);
    // Our own input, written by startRollout from a validated spec.
    const spec = defaultPayloadConverter.fromPayload<RolloutSpec>(input);
    let phase: string | undefined;
    if (description.status.name === 'COMPLETED') phase = (await handle.result()).phase;
    const fromVersion = description.typedSearchAttributes.get(searchAttributes.fromVersion);
    return {
      spec,
      runId: description.runId,
      status: description.status.name,
      ...(phase !== undefined ? { phase } : {}),
      ...(fromVersion !== undefined ? { fromVersion } : {}),
    };
  } catch (error) {
    if (error instanceof WorkflowNotFoundError)
      throw new RolloutNotFoundError(`no rollout of ${target} was found`);
    throw error;
  }
}

/**
 * Starts the last rollout of a target again, with the same spec, when it did not succeed: servers already on the
 * version are left as they are, a Kubernetes rollout picks up from the Deployments as they stand.
 */
export async function retryRollout(client: Client, target: string, options: StartOptions = {}) {
  const last = await lastRollout(client, target);
  if (last.status === 'RUNNING')
    throw new RolloutCommandRejectedError(`the rollout of ${target} is still running: nothing to retry`);
  if (last.phase === 'succeeded')
    throw new RolloutCommandRejectedError(
      `the last rollout of ${target} succeeded (${last.spec.version}): nothing to retry`,
    );
  return { handle: await startRollout(client, last.spec, options), spec: last.spec };
}

/** Rolls a target back to the version its last, successful, rollout started from. */
export async function undoRollout(client: Client, target: string, options: StartOptions = {}) {
  const last = await lastRollout(client, target);
  if (last.status === 'RUNNING')
    throw new RolloutCommandRejectedError(
      `the rollout of ${target} is still running: abort it instead of undo`,
    );
  if (last.phase !== 'succeeded')
    throw new RolloutCommandRejectedError(
      `the last rollout of ${target} did not succeed (${last.phase ?? last.status.toLowerCase()}): its target is already on the old version, or use retry`,
    );
  if (last.fromVersion === undefined)
    throw new RolloutCommandRejectedError(
      `the last rollout of ${target} did not record the version it started from`,
    );
  const spec: RolloutSpec = { ...last.spec, version: last.fromVersion };
  return { handle: await startRollout(client, spec, options), spec };
}
