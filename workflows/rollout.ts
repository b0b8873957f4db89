import {
  CancellationScope,
  ContinueAsNew,
  getExternalWorkflowHandle,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { RolloutSpec } from '../spec/rollout';
import type { RolloutRun } from './continuation';
import { defaultBulkFrom, defaultMaxEventsPerRun } from './continuation';
import { RolloutControl } from './control';
import { Lifecycle } from './lifecycle';
import type { RolloutResult } from './messages';
import { lockWorkflowId, releaseLockSignal, statusQuery } from './messages';
import { Notifier } from './notifier';
import type { Patches } from './patches';
import type { Target } from './registry';
import { runStrategy } from './registry';
import { RolloutState } from './state';
import type { FleetRolloutSpec } from './targets/fleet/steps';
import { FleetRolloutTarget } from './targets/fleet/target';
import type { KubernetesRolloutSpec } from './targets/kubernetes/steps';
import { KubernetesRolloutTarget } from './targets/kubernetes/target';

/**
 * One rollout of one target to one version, from a validated spec. `run` is for the engine: a rolling rollout of
 * a large fleet continues as new with its cursor there; a test may lower the events allowed per run.
 */
export async function rolloutWorkflow(spec: RolloutSpec, run: RolloutRun = {}): Promise<RolloutResult> {
  const servers = spec.target.kind === 'fleet' ? spec.target.servers.map((s) => s.name) : [];
  const state = new RolloutState(spec.target.name, spec.strategy.type, spec.version, servers);
  setHandler(statusQuery, () => state.status());
  const control = new RolloutControl(state, run.cursor?.control);
  if (spec.progressDeadline) void control.watchProgress(spec.progressDeadline);
  const lifecycle = new Lifecycle(state, control, spec.version);
  const target: Target =
    spec.target.kind === 'kubernetes'
      ? new KubernetesRolloutTarget(spec as KubernetesRolloutSpec, state, control, lifecycle)
      : new FleetRolloutTarget(spec as FleetRolloutSpec, state, control, lifecycle);
  let continuing = false;
  try {
    return await notifying(spec, state, run.cursor !== undefined, () =>
      runStrategy({
        spec,
        state,
        control,
        lifecycle,
        target,
        run: {
          maxEventsPerRun: run.maxEventsPerRun ?? defaultMaxEventsPerRun,
          bulkFrom: run.bulkFrom ?? defaultBulkFrom,
          ...(run.cursor ? { cursor: run.cursor } : {}),
        },
      }),
    );
  } catch (error) {
    continuing = error instanceof ContinueAsNew;
    throw error;
  } finally {
    // A rollout going on in a new run keeps the infrastructure.
    if (!continuing) await releaseInfrastructure(spec, control.patches);
  }
}

/**
 * Ends the infrastructure lock the client took for this rollout, before the rollout itself ends: Temporal drops
 * a signal whose sender has closed by the time the signal is delivered, so one sent in the rollout's last
 * workflow task never reached its lock.
 */
async function releaseInfrastructure(spec: RolloutSpec, patches: Patches): Promise<void> {
  // Rollouts recorded before the lock ended without the signal.
  if (!patches.has('release-infrastructure-lock')) return;
  const { taskQueue, workflowId } = workflowInfo();
  const lock = getExternalWorkflowHandle(lockWorkflowId(spec.target, taskQueue));
  // No lock to release when the rollout was started without one (by a test, or a tool of its own).
  const sent = lock.signal(releaseLockSignal, workflowId).catch(() => undefined);
  // Rollouts recorded before sent it with their completion, in the same workflow task.
  if (!patches.has('lock-release-awaited')) return;
  // A rollout cancelled through Temporal still releases its lock on the way out.
  await CancellationScope.nonCancellable(() => sent);
}

/** Runs a strategy with the spec's notifications, letting the last ones reach their receiver before the end. */
async function notifying(
  spec: RolloutSpec,
  state: RolloutState,
  continued: boolean,
  strategy: () => Promise<RolloutResult>,
): Promise<RolloutResult> {
  if (!spec.notify) return strategy();
  const notifier = new Notifier(spec, state, continued);
  state.listener = (change) => notifier.changed(change);
  try {
    return await strategy();
  } finally {
    await notifier.flush();
  }
}
