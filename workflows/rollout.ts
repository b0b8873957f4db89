import { setHandler } from '@temporalio/workflow';
import type { RolloutSpec } from '../spec/rollout';
import type { FleetRolloutSpec } from './fleet-steps';
import { RolloutControl } from './control';
import { FleetSteps } from './fleet-steps';
import type { KubernetesRolloutSpec } from './kubernetes-steps';
import { KubernetesSteps } from './kubernetes-steps';
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
    return rollingKubernetesStrategy(kubernetesSpec, state, new KubernetesSteps(kubernetesSpec), control);
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
  return rollingFleetStrategy(fleetSpec, state, new FleetSteps(fleetSpec, state), control);
}
