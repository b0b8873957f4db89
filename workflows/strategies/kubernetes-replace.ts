import type { KubernetesPreflight } from '../../activities/kubernetes/kubernetes-activities';
import type { BlueGreenStrategy, RecreateStrategy, SurgeStrategy } from '../../spec/rollout';
import { resolveQuantity } from '../plan';
import type { RolloutControl } from '../control';
import { RolloutAborted } from '../control';
import { failureMessage } from '../fleet-steps';
import type { KubernetesRolloutSpec, KubernetesSteps } from '../kubernetes-steps';
import type { RolloutResult } from '../messages';
import type { RolloutState } from '../state';
import { preflightOrReject, rejectBeforeAnyChange, rollBack } from './outcome';

export interface Started {
  readonly preflight: KubernetesPreflight;
  readonly show: (
    role: 'stable' | 'next',
    name: string,
    version: string,
    replicas: number,
    available: number,
  ) => void;
}

/** Preflight shared by the strategies that replace a Deployment's pods all at once. */
export async function begin(
  spec: KubernetesRolloutSpec,
  state: RolloutState,
  steps: KubernetesSteps,
): Promise<Started | RolloutResult> {
  const preflight = await preflightOrReject(state, () => steps.preflight());
  state.setFromVersion(preflight.fromVersion);
  const show: Started['show'] = (role, name, version, replicas, available) =>
    state.setDeployment(preflight.replicas, { role, name, version, replicas, available });
  show('stable', preflight.stable, preflight.fromVersion, preflight.replicas, preflight.replicas);
  if (preflight.fromVersion === spec.version) {
    state.setPhase('succeeded', `${preflight.stable} already runs ${spec.version}`);
    return finished(state, spec.version);
  }
  return { preflight, show };
}

export function finished(state: RolloutState, toVersion: string, reason?: string): RolloutResult {
  const status = state.status();
  return {
    phase: reason === undefined ? 'succeeded' : 'rolled-back',
    ...(reason !== undefined ? { reason } : {}),
    toVersion,
    servers: status.servers,
    ...(status.kubernetes ? { kubernetes: status.kubernetes } : {}),
  };
}

/**
 * The way back when the old Deployment kept serving beside the new one (canary, surge): the old one back to
 * full first, so capacity never dips, then the new one gone.
 */
export async function restoreStable(
  steps: KubernetesSteps,
  { preflight, show }: Started,
  version: string,
  next: string | undefined,
): Promise<void> {
  const back = await steps.scale(preflight.stable, preflight.replicas, 'up');
  show('stable', preflight.stable, preflight.fromVersion, back.replicas, back.available);
  if (next === undefined) return;
  await steps.scale(next, 0, 'down');
  await steps.delete(next);
  show('next', next, version, 0, 0);
}

/** After a success: the older Deployments Baton made are pruned, and the rollout has succeeded. */
export async function succeed(
  steps: KubernetesSteps,
  state: RolloutState,
  { preflight }: Started,
  version: string,
): Promise<RolloutResult> {
  await steps.prune([preflight.stable, preflight.next]);
  state.setPhase('succeeded');
  return finished(state, version);
}

export const stopReasonOf = (error: unknown) =>
  error instanceof RolloutAborted ? error.message : failureMessage(error);

/**
 * Recreate on Kubernetes: the old version's pods all go, the optional pre-step runs (a migration), then the new
 * version's Deployment is scaled to full. Any failure, or an abort, removes the new Deployment and scales the old
 * one back to full.
 */
export async function recreateKubernetesStrategy(
  spec: KubernetesRolloutSpec & { strategy: RecreateStrategy },
  state: RolloutState,
  steps: KubernetesSteps,
  control: RolloutControl,
): Promise<RolloutResult> {
  const started = await begin(spec, state, steps);
  if (!('preflight' in started)) return started;
  const { preflight, show } = started;
  const replicas = preflight.replicas;
  state.setPhase('progressing');
  let next: string | undefined;
  let stopReason: string | undefined;
  try {
    next = (await steps.ensureVersionDeployment(preflight.stable)).name;
    show('next', next, spec.version, 0, 0);
    await control.checkpoint();
    const gone = await steps.scale(preflight.stable, 0, 'down');
    show('stable', preflight.stable, preflight.fromVersion, gone.replicas, gone.available);
    if (spec.strategy.preStep) {
      await control.checkpoint();
      await steps.hook(spec.strategy.preStep);
    }
    await control.checkpoint();
    show('next', next, spec.version, replicas, 0);
    const up = await steps.scale(next, replicas, 'up');
    show('next', next, spec.version, up.replicas, up.available);
  } catch (error) {
    stopReason = stopReasonOf(error);
  }
  if (stopReason === undefined) return succeed(steps, state, started, spec.version);
  await rollBack(state, stopReason, async () => {
    if (next !== undefined) {
      await steps.scale(next, 0, 'down');
      await steps.delete(next);
      show('next', next, spec.version, 0, 0);
    }
    const back = await steps.scale(preflight.stable, replicas, 'up');
    show('stable', preflight.stable, preflight.fromVersion, back.replicas, back.available);
  });
  return finished(state, spec.version, stopReason);
}

/**
 * Blue/green on Kubernetes: the Service is pinned to the old pods (their pod-template-hash, as Argo Rollouts
 * does), the new version's Deployment comes up to full beside them with no traffic, then one selector change
 * switches all traffic at once. The old pods stay, idle, for scaleDownDelay as the instant way back, then go, and
 * the Service's selector is the user's again. Before or during the delay, a failure or an abort switches back.
 */
export async function blueGreenKubernetesStrategy(
  spec: KubernetesRolloutSpec & { strategy: BlueGreenStrategy },
  state: RolloutState,
  steps: KubernetesSteps,
  control: RolloutControl,
): Promise<RolloutResult> {
  const service = spec.target.service;
  if (service === undefined) {
    rejectBeforeAnyChange(state, 'target.service: blue-green switches a Service; name it in the spec');
  }
  const started = await begin(spec, state, steps);
  if (!('preflight' in started)) return started;
  const { preflight, show } = started;
  const replicas = preflight.replicas;
  const selector = preflight.serviceSelector ?? {};
  const pinTo = (hash: string) => ({ ...selector, 'pod-template-hash': hash });
  const preview = spec.strategy.previewService;
  state.setPhase('progressing');

  const stableHash = await steps.templateHash(preflight.stable);
  await steps.setServiceSelector(service, pinTo(stableHash), `pin ${service} to ${preflight.stable}`);
  let next: string | undefined;
  let switched = false;
  let stopReason: string | undefined;
  try {
    next = (await steps.ensureVersionDeployment(preflight.stable)).name;
    show('next', next, spec.version, replicas, 0);
    await control.checkpoint();
    const up = await steps.scale(next, replicas, 'up');
    show('next', next, spec.version, up.replicas, up.available);
    if (preview !== undefined)
      await steps.setServiceSelector(
        preview,
        pinTo(await steps.templateHash(next)),
        `point ${preview} at ${next}`,
      );
    if (!spec.strategy.autoPromote)
      await control.gate(`approval before switching ${service} to ${spec.version}`);
    await control.checkpoint();
    const nextHash = await steps.templateHash(next);
    await steps.setServiceSelector(service, pinTo(nextHash), `switch ${service} to ${next}`);
    switched = true;
    await control.sleep(spec.strategy.scaleDownDelay);
    await control.checkpoint();
  } catch (error) {
    stopReason = stopReasonOf(error);
  }

  if (stopReason === undefined) {
    const gone = await steps.scale(preflight.stable, 0, 'down');
    show('stable', preflight.stable, preflight.fromVersion, gone.replicas, gone.available);
    await steps.setServiceSelector(service, selector, `give ${service} its own selector back`);
    if (preview !== undefined)
      await steps.setServiceSelector(preview, selector, `${preview} selects what ${service} selects`);
    await steps.prune([preflight.stable, preflight.next]);
    state.setPhase('succeeded');
    return finished(state, spec.version);
  }
  await rollBack(state, stopReason, async () => {
    if (switched)
      await steps.setServiceSelector(
        service,
        pinTo(stableHash),
        `switch ${service} back to ${preflight.stable}`,
      );
    if (next !== undefined) {
      await steps.scale(next, 0, 'down');
      await steps.delete(next);
      show('next', next, spec.version, 0, 0);
    }
    await steps.setServiceSelector(service, selector, `give ${service} its own selector back`);
    if (preview !== undefined)
      await steps.setServiceSelector(preview, selector, `${preview} selects what ${service} selects`);
  });
  return finished(state, spec.version, stopReason);
}

/**
 * Surge then retire oldest on Kubernetes: each round scales the new version's Deployment up by the batch (all
 * replicas by default: the app doubles) and waits for its pods to be available, then scales the old one down
 * by as many, its pods leaving the Service first. Capacity never dips below the desired replicas. A failure or
 * an abort brings the old Deployment back to full, then removes the new one.
 */
export async function surgeKubernetesStrategy(
  spec: KubernetesRolloutSpec & { strategy: SurgeStrategy },
  state: RolloutState,
  steps: KubernetesSteps,
  control: RolloutControl,
): Promise<RolloutResult> {
  const started = await begin(spec, state, steps);
  if (!('preflight' in started)) return started;
  const { preflight, show } = started;
  const desired = preflight.replicas;
  const batch = Math.max(1, resolveQuantity(spec.strategy.batchSize, desired, 'up'));
  state.batches = Math.ceil(desired / batch);
  state.setPhase('progressing');
  let next: string | undefined;
  let stopReason: string | undefined;
  try {
    next = (await steps.ensureVersionDeployment(preflight.stable)).name;
    show('next', next, spec.version, 0, 0);
    let moved = 0;
    while (moved < desired) {
      state.batch++;
      await control.checkpoint();
      moved = Math.min(desired, moved + batch);
      show('next', next, spec.version, moved, 0);
      const up = await steps.scale(next, moved, 'up');
      show('next', next, spec.version, up.replicas, up.available);
      await control.checkpoint();
      const down = await steps.scale(preflight.stable, desired - moved, 'down');
      show('stable', preflight.stable, preflight.fromVersion, down.replicas, down.available);
    }
  } catch (error) {
    stopReason = stopReasonOf(error);
  }
  if (stopReason === undefined) return succeed(steps, state, started, spec.version);
  await rollBack(state, stopReason, () => restoreStable(steps, started, spec.version, next));
  return finished(state, spec.version, stopReason);
}
