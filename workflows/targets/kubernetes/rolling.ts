import { ApplicationFailure, CancellationScope, condition } from '@temporalio/workflow';
import type { Patches } from '../../patches';
import type { ReplicaCount } from '../../../activities/kubernetes/kubernetes-activities';
import type { RollingStrategy } from '../../../spec/rollout';
import type { RolloutControl } from '../../control';
import { RolloutAborted } from '../../control';
import type { DeploymentStatus, RolloutResult } from '../../messages';
import { pauseAfter } from '../../pauses';
import type { Fenceposts, Quantity } from '../../plan';
import { nextReplicaStep, percent, resolveFenceposts } from '../../plan';
import type { StrategyContext } from '../../registry';
import { failureMessage, RolloutStopped } from '../../stop';
import type { KubernetesSteps } from './steps';
import type { KubernetesRolloutTarget } from './target';

interface Side {
  readonly role: DeploymentStatus['role'];
  readonly name: string;
  readonly version: string;
  count: ReplicaCount;
}

/**
 * Rolling update on Kubernetes: the new version gets its own Deployment beside the old one, both behind the
 * Service; the new one is scaled up and the old one down in steps that never exceed desired + maxSurge pods nor
 * fall below desired - maxUnavailable available ones. A step whose pods are not available in time rolls the
 * change back the same way, in reverse, until the old version again has every replica available.
 */
export async function convergeReplicas({
  spec,
  state,
  control,
  lifecycle,
  target,
  run,
}: StrategyContext<RollingStrategy, KubernetesRolloutTarget>): Promise<RolloutResult> {
  const { steps } = target;
  const baseline = await target.preflight();
  const preflight = target.stable;
  const desired = preflight.replicas;
  let fenceposts: Fenceposts;
  try {
    fenceposts = resolveFenceposts(
      desired,
      spec.strategy.maxSurge ?? percent(25),
      spec.strategy.maxUnavailable ?? percent(25),
    );
  } catch (error) {
    lifecycle.reject(failureMessage(error));
  }

  const stable: Side = {
    role: 'stable',
    name: preflight.stable,
    version: preflight.fromVersion,
    count: await steps.read(preflight.stable),
  };
  const show = ({ role, name, version, count }: Side) =>
    state.setDeployment(desired, { role, name, version, ...count });
  show(stable);
  if (baseline.toMove === 0) return lifecycle.alreadyDone(preflight.stable);
  if (spec.target.mode === 'native')
    return nativeRolling({ spec, state, control, lifecycle, target, run }, stable);

  let next: Side | undefined;
  const changed = () => {
    show(stable);
    if (next) show(next);
  };
  lifecycle.onUndo('replicas moved back', async () => {
    if (!next) return;
    // Re-read both: the failed step may have left either side anywhere.
    stable.count = await steps.read(stable.name);
    next.count = await steps.read(next.name);
    await converge(desired, fenceposts, next, stable, steps, { changed });
    await steps.delete(next.name);
    next.count = { replicas: 0, available: 0 };
    show(next);
  });
  lifecycle.progressing();
  return lifecycle.run(
    async () => {
      const { name } = await steps.ensureVersionDeployment(preflight.stable);
      next = { role: 'next', name, version: spec.version, count: await steps.read(name) };
      show(next);
      // Without a wait per retirement (detachDelay), a check per step or a pause after one, old pods can go as
      // new ones become available, as the Deployment controller does; otherwise fewer, whole steps cost less.
      if (
        spec.target.detachDelay === 0 &&
        spec.verify?.http === undefined &&
        spec.strategy.pauses.length === 0 &&
        control.patches.has('kubernetes-rolling-as-pods-come')
      ) {
        await convergeAsPodsCome(desired, fenceposts, stable, next, steps, {
          changed,
          checkpoint: () => control.checkpoint(),
          patches: control.patches,
        });
        return;
      }
      await converge(desired, fenceposts, stable, next, steps, {
        changed,
        checkpoint: () => control.checkpoint(),
        afterScaleUp: async (n) => {
          const stop = await pauseAfter(control, spec.strategy.pauses, n, `step ${n}`);
          if (stop !== undefined) throw new RolloutStopped(stop);
        },
      });
    },
    () => target.finish(),
  );
}

/**
 * Native mode: one Deployment, rolled by its own controller with the spec's maxSurge and maxUnavailable; a
 * rollout whose pods stop becoming available is undone to the previous ReplicaSet's template.
 */
async function nativeRolling(
  { spec, state, control, lifecycle, target }: StrategyContext<RollingStrategy, KubernetesRolloutTarget>,
  deployment: Side,
): Promise<RolloutResult> {
  const { steps } = target;
  const desired = target.stable.replicas;
  const show = (version: string, count: ReplicaCount) =>
    state.setDeployment(desired, { role: 'stable', name: deployment.name, version, ...count });
  const intOrPercent = (q: Quantity) => (q.kind === 'count' ? q.value : `${q.value}%`);
  lifecycle.onUndo('Deployment undone', async () => {
    await steps.undo(deployment.version);
    show(deployment.version, await steps.waitForRollout());
  });
  lifecycle.progressing();
  return lifecycle.run(async () => {
    await steps.setImage(
      intOrPercent(spec.strategy.maxSurge ?? percent(25)),
      intOrPercent(spec.strategy.maxUnavailable ?? percent(25)),
    );
    show(spec.version, await followNative(steps, control));
  });
}

/**
 * Follows a native rollout until it completes; an operator pause sets the Deployment's spec.paused until resumed,
 * an abort stops following (the caller undoes).
 */
async function followNative(steps: KubernetesSteps, control: RolloutControl): Promise<ReplicaCount> {
  for (;;) {
    const scope = new CancellationScope();
    const waiting = scope.run(() => steps.waitForRollout());
    const interrupted = scope.run(() => condition(() => control.isPaused || control.aborted !== undefined));
    // Whichever loses the race is cancelled below; its rejection is expected.
    waiting.catch(() => undefined);
    interrupted.catch(() => undefined);
    const finished = await Promise.race([waiting, interrupted.then(() => undefined)]);
    scope.cancel();
    if (finished) return finished;
    if (control.aborted) throw new RolloutAborted(control.abortReason());
    await steps.setPaused(true);
    try {
      await control.checkpoint();
    } finally {
      if (!control.aborted) await steps.setPaused(false);
    }
  }
}

/** Neither side moved while waited for: the move can't go on. */
const stuck = (from: Side, to: Side) =>
  ApplicationFailure.nonRetryable(
    `stuck: ${to.name} has ${to.count.available} of ${to.count.replicas} pods available and ${from.name} ${from.count.available} of ${from.count.replicas}`,
  );

/** Moves every replica from one Deployment to the other, one fence-post-respecting step at a time. */
async function converge(
  desired: number,
  fenceposts: Fenceposts,
  from: Side,
  to: Side,
  steps: KubernetesSteps,
  hooks: {
    changed: () => void;
    checkpoint?: () => Promise<void>;
    /** Called after the nth scale-up of `to` has all its pods available. */
    afterScaleUp?: (n: number) => Promise<void>;
  },
): Promise<void> {
  const { changed } = hooks;
  let scaleUps = 0;
  for (let waitedWithoutChange = 0; ; ) {
    const step = nextReplicaStep(desired, fenceposts, from.count, to.count);
    if (step.kind === 'done') return;
    // Operators pause and abort between steps; a rollback runs without checkpoints.
    await hooks.checkpoint?.();
    if (step.kind === 'scale-up') {
      to.count = { replicas: step.replicas, available: to.count.available };
      changed();
      to.count = await steps.scale(to.name, step.replicas, 'up');
      changed();
      // The last scale-up finishes the move: a pause there would hold nothing back.
      if (step.replicas < desired || from.count.replicas > 0) await hooks.afterScaleUp?.(++scaleUps);
    } else if (step.kind === 'scale-down') {
      from.count = { replicas: step.replicas, available: Math.min(from.count.available, step.replicas) };
      changed();
      from.count = await steps.scale(from.name, step.replicas, 'down');
    } else {
      // Pods asked for are not all available yet (or the old side lost some): wait for the new side once more.
      if (waitedWithoutChange++ > 0) throw stuck(from, to);
      to.count = await steps.waitFor(to.name, to.count.replicas, true);
      from.count = await steps.read(from.name);
    }
    changed();
  }
}

/**
 * Moves every replica as the Deployment controller does: new pods are asked for as far as maxSurge allows, and each
 * time more of them are available, as many old pods leave (the Service first) and their room goes to new ones. No
 * step waits for a whole batch, so a slow pod holds back only its own share. As the controller does, the fence
 * posts count each Deployment's replicas, so an old pod's room is reused once it is out of the Service and asked to
 * stop, not when it has stopped.
 */
async function convergeAsPodsCome(
  desired: number,
  fenceposts: Fenceposts,
  from: Side,
  to: Side,
  steps: KubernetesSteps,
  hooks: { changed: () => void; checkpoint: () => Promise<void>; patches: Patches },
): Promise<void> {
  const { changed } = hooks;
  // Rollouts recorded before made a retirement and the scale-up after it two activities, and a wait and the read
  // after it two more.
  const fused = hooks.patches.has('kubernetes-rolling-fused-steps');
  for (let waitedWithoutChange = 0; ; ) {
    const step = nextReplicaStep(desired, fenceposts, from.count, to.count);
    if (step.kind === 'done') return;
    await hooks.checkpoint();
    if (step.kind === 'scale-up') {
      to.count = { replicas: step.replicas, available: to.count.available };
      changed();
      await steps.resize(to.name, step.replicas);
      waitedWithoutChange = 0;
    } else if (step.kind === 'scale-down') {
      from.count = { replicas: step.replicas, available: Math.min(from.count.available, step.replicas) };
      if (fused) {
        // The room this retirement makes is the next step's: asked for in the same trip.
        const after = nextReplicaStep(desired, fenceposts, from.count, to.count);
        const grow =
          after.kind === 'scale-up'
            ? { name: to.name, replicas: after.replicas, from: to.count.replicas }
            : undefined;
        if (grow) to.count = { replicas: grow.replicas, available: to.count.available };
        changed();
        await steps.retireThenGrow(from.name, step.replicas, grow);
      } else {
        changed();
        await steps.retire(from.name, step.replicas);
      }
      waitedWithoutChange = 0;
    } else {
      const seen = to.count.available;
      if (fused) {
        const counts = await steps.waitForMoreThenRead(to.name, to.count.replicas, seen, from.name);
        to.count = counts.waited;
        from.count = counts.other;
      } else {
        to.count = await steps.waitForMore(to.name, to.count.replicas, seen);
        from.count = await steps.read(from.name);
      }
      // The wait returns on progress or when every pod asked for is available; twice neither is a stuck move.
      if (to.count.available <= seen && waitedWithoutChange++ > 0) throw stuck(from, to);
    }
    changed();
  }
}
