import { ApplicationFailure, setHandler } from '@temporalio/workflow';
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
import { blueGreenKubernetesStrategy, recreateKubernetesStrategy } from './strategies/kubernetes-replace';
import { recreateFleetStrategy } from './strategies/recreate';
import { rollingKubernetesStrategy } from './strategies/rolling-kubernetes';
import { canaryFleetStrategy } from './strategies/canary';
import { canaryKubernetesStrategy } from './strategies/canary-kubernetes';

/** One rollout of one target to one version, from a validated spec. */
export async function rolloutWorkflow(spec: RolloutSpec): Promise<RolloutResult> {
  const { strategy } = spec;
  if (spec.target.kind === 'kubernetes') {
    const kubernetesSpec = spec as KubernetesRolloutSpec;
    const state = new RolloutState(spec.target.name, strategy.type, spec.version, []);
    setHandler(statusQuery, () => state.status());
    const control = new RolloutControl(state);
    if (spec.progressDeadline) void control.watchProgress(spec.progressDeadline);
    const steps = new KubernetesSteps(kubernetesSpec);
    return notifying(spec, state, () => {
      switch (strategy.type) {
        case 'rolling':
          return rollingKubernetesStrategy({ ...kubernetesSpec, strategy }, state, steps, control);
        case 'recreate':
          return recreateKubernetesStrategy({ ...kubernetesSpec, strategy }, state, steps, control);
        case 'blue-green':
          return blueGreenKubernetesStrategy({ ...kubernetesSpec, strategy }, state, steps, control);
        case 'canary':
          return canaryKubernetesStrategy({ ...kubernetesSpec, strategy }, state, steps, control);
      }
    });
  }
  const fleetSpec = spec as FleetRolloutSpec;
  const state = new RolloutState(
    spec.target.name,
    strategy.type,
    spec.version,
    fleetSpec.target.servers.map((s) => s.name),
  );
  setHandler(statusQuery, () => state.status());
  const control = new RolloutControl(state);
  if (spec.progressDeadline) void control.watchProgress(spec.progressDeadline);
  const steps = new FleetSteps(fleetSpec, state);
  return notifying(spec, state, () => {
    switch (strategy.type) {
      case 'rolling':
        return rollingFleetStrategy({ ...fleetSpec, strategy }, state, steps, control);
      case 'recreate':
        return recreateFleetStrategy({ ...fleetSpec, strategy }, state, steps, control);
      case 'canary':
        return canaryFleetStrategy({ ...fleetSpec, strategy }, state, steps, control);
      case 'blue-green':
        throw ApplicationFailure.nonRetryable(
          'strategy.type blue-green: this version of Baton runs blue-green on kubernetes targets only',
          'UnsupportedStrategy',
        );
    }
  });
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
