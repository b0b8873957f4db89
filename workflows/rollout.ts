import { ApplicationFailure, setHandler } from '@temporalio/workflow';
import type { RolloutSpec } from '../spec/rollout';
import type { FleetRolloutSpec } from './fleet-steps';
import { FleetSteps } from './fleet-steps';
import type { RolloutResult } from './messages';
import { statusQuery } from './messages';
import { RolloutState } from './state';
import { rollingFleetStrategy } from './strategies/rolling';

/** One rollout of one target to one version, from a validated spec. */
export async function rolloutWorkflow(spec: RolloutSpec): Promise<RolloutResult> {
  if (spec.target.kind !== 'fleet') {
    throw ApplicationFailure.nonRetryable(
      `target.kind "${spec.target.kind}": this version of Baton rolls out fleets behind HAProxy only`,
      'UnsupportedTarget',
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
  return rollingFleetStrategy(fleetSpec, state, new FleetSteps(fleetSpec, state));
}
