import { setHandler } from '@temporalio/workflow';
import { count, fleetTooLarge } from './plan';
import { preflightOrReject, rejectBeforeAnyChange } from './strategies/outcome';
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
import type { RolloutRun } from './continuation';
import { defaultBulkFrom, defaultMaxEventsPerRun } from './continuation';
import {
  blueGreenKubernetesStrategy,
  recreateKubernetesStrategy,
  surgeKubernetesStrategy,
} from './strategies/kubernetes-replace';
import { blueGreenFleetStrategy, surgeFleetStrategy } from './strategies/replace-fleet';
import { recreateFleetStrategy } from './strategies/recreate';
import { rollingKubernetesStrategy } from './strategies/rolling-kubernetes';
import { canaryFleetStrategy } from './strategies/canary';
import { canaryKubernetesStrategy } from './strategies/canary-kubernetes';

/**
 * One rollout of one target to one version, from a validated spec. `run` is for the engine: a rolling rollout of
 * a large fleet continues as new with its cursor there; a test may lower the events allowed per run.
 */
export async function rolloutWorkflow(spec: RolloutSpec, run: RolloutRun = {}): Promise<RolloutResult> {
  const { strategy } = spec;
  if (spec.target.kind === 'kubernetes') {
    const kubernetesSpec = spec as KubernetesRolloutSpec;
    const state = new RolloutState(spec.target.name, strategy.type, spec.version, []);
    setHandler(statusQuery, () => state.status());
    const control = new RolloutControl(state);
    if (spec.progressDeadline) void control.watchProgress(spec.progressDeadline);
    const steps = new KubernetesSteps(kubernetesSpec);
    return notifying(spec, state, false, () => {
      switch (strategy.type) {
        case 'rolling':
          return rollingKubernetesStrategy({ ...kubernetesSpec, strategy }, state, steps, control);
        case 'recreate':
          return recreateKubernetesStrategy({ ...kubernetesSpec, strategy }, state, steps, control);
        case 'blue-green':
          return blueGreenKubernetesStrategy({ ...kubernetesSpec, strategy }, state, steps, control);
        case 'canary':
          return canaryKubernetesStrategy({ ...kubernetesSpec, strategy }, state, steps, control);
        case 'surge':
          return surgeKubernetesStrategy({ ...kubernetesSpec, strategy }, state, steps, control);
      }
    });
  }
  let fleetSpec = spec as FleetRolloutSpec;
  const state = new RolloutState(
    spec.target.name,
    strategy.type,
    spec.version,
    fleetSpec.target.servers.map((s) => s.name),
  );
  setHandler(statusQuery, () => state.status());
  const control = new RolloutControl(state, run.cursor?.control);
  if (spec.progressDeadline) void control.watchProgress(spec.progressDeadline);
  let steps = new FleetSteps(fleetSpec, state);
  return notifying(spec, state, run.cursor !== undefined, async () => {
    if (fleetSpec.target.provision) {
      // A provisioned fleet is what its backend holds now: earlier rollouts created and destroyed servers.
      const servers = await preflightOrReject(state, () => steps.discover());
      if (servers.length === 0)
        rejectBeforeAnyChange(
          state,
          `backend ${fleetSpec.target.loadBalancer.haproxy.backend} has no server`,
        );
      const tooLarge = fleetTooLarge(strategy, servers.length);
      if (tooLarge) rejectBeforeAnyChange(state, `the backend's fleet: ${tooLarge}`);
      for (const server of servers) state.addServer(server.name);
      fleetSpec = { ...fleetSpec, target: { ...fleetSpec.target, servers } };
      steps = new FleetSteps(fleetSpec, state);
    }
    switch (strategy.type) {
      case 'rolling':
        return strategy.method === 'replace'
          ? surgeFleetStrategy(fleetSpec, state, steps, control, {
              batchSize: strategy.batchSize ?? count(1),
              pauses: strategy.pauses,
              pauseBetweenBatches: strategy.pauseBetweenBatches,
            })
          : rollingFleetStrategy({ ...fleetSpec, strategy }, state, steps, control, {
              maxEventsPerRun: run.maxEventsPerRun ?? defaultMaxEventsPerRun,
              bulkFrom: run.bulkFrom ?? defaultBulkFrom,
              ...(run.cursor ? { cursor: run.cursor } : {}),
            });
      case 'recreate':
        return recreateFleetStrategy({ ...fleetSpec, strategy }, state, steps, control);
      case 'canary':
        return canaryFleetStrategy({ ...fleetSpec, strategy }, state, steps, control);
      case 'surge':
        return surgeFleetStrategy(fleetSpec, state, steps, control, { batchSize: strategy.batchSize });
      case 'blue-green':
        return blueGreenFleetStrategy({ ...fleetSpec, strategy }, state, steps, control);
    }
  });
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
