import { setHandler } from '@temporalio/workflow';
import type { RolloutSpec } from '../spec/rollout';
import type { FleetRolloutSpec } from './fleet-steps';
import { RolloutControl } from './control';
import { FleetSteps } from './fleet-steps';
import type { KubernetesRolloutSpec } from './kubernetes-steps';
import { KubernetesSteps } from './kubernetes-steps';
import { Notifier } from './notifier';
import type { RolloutResult } from './messages';
import { statusQuery } from './messages';
import { RolloutState } from './state';
import { rollingFleetStrategy } from './strategies/rolling';
import { rollingKubernetesStrategy } from './strategies/rolling-kubernetes';

/** One rollout of one target to one version, from a validated spec. */
export async function rolloutWorkflow(spec: RolloutSpec): Promise<RolloutResult> {
  if (spec.target.kind === 'kubernetes') {
    const kubernetesSpec = spec as KubernetesRolloutSpec;
    const state = new RolloutState(spec.target.name, spec.strategy.type, spec.version, []);
    setHandler(statusQuery, () => state.status());
    const control = new RolloutControl(state);
    if (spec.progressDeadline) void control.watchProgress(spec.progressDeadline);
    return notifying(spec, state, () =>
      rollingKubernetesStrategy(kubernetesSpec, state, new KubernetesSteps(kubernetesSpec), control),
    );
  }
  const fleetSpec = spec as FleetRolloutSpec;
  const state = new RolloutState(
    spec.target.name,
    spec.strategy.type,
    spec.version,
    fleetSpec.target.servers.map((s) => s.name),
  );
  setHandler(statusQuery, () => state.status());
  const control = new RolloutControl(state);
  if (spec.progressDeadline) void control.watchProgress(spec.progressDeadline);
  return notifying(spec, state, () =>
    rollingFleetStrategy(fleetSpec, state, new FleetSteps(fleetSpec, state), control),
  );
}

/** Runs a strategy with the spec's notifications, letting the last ones reach their receiver before the end. */
async function notifying(
  spec: RolloutSpec,
  state: RolloutState,
  strategy: () => Promise<RolloutResult>,
): Promise<RolloutResult> {
  if (!spec.notify) return strategy();
  const notifier = new Notifier(spec, state);
  state.listener = (change) => notifier.changed(change);
  try {
    return await strategy();
  } finally {
    await notifier.flush();
  }
}
