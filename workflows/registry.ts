import type { RolloutSpec } from '../spec/rollout';
import type { RolloutRun } from './continuation';
import type { RolloutControl } from './control';
import type { Lifecycle } from './lifecycle';
import type { RolloutResult } from './messages';
import type { RolloutState } from './state';
import { blueGreen } from './strategies/blue-green';
import { canary } from './strategies/canary';
import { recreate } from './strategies/recreate';
import { rolling } from './strategies/rolling';
import { surge } from './strategies/surge';
import type { FleetRolloutSpec } from './targets/fleet/steps';
import type { FleetRolloutTarget } from './targets/fleet/target';
import type { KubernetesRolloutSpec } from './targets/kubernetes/steps';
import type { KubernetesRolloutTarget } from './targets/kubernetes/target';

export type Target = FleetRolloutTarget | KubernetesRolloutTarget;

/** The spec a target of that kind rolls out. */
type SpecFor<T extends Target> = [T] extends [KubernetesRolloutTarget]
  ? KubernetesRolloutSpec
  : [T] extends [FleetRolloutTarget]
    ? FleetRolloutSpec
    : RolloutSpec;

/** The strategy part of a spec: one of rolling, recreate, blue-green, canary, surge. */
export type RolloutSpecStrategy = RolloutSpec['strategy'];

/** What a strategy runs with: its spec, the rollout's state and operator control, its lifecycle and target. */
export interface StrategyContext<S extends RolloutSpecStrategy, T extends Target = Target> {
  readonly spec: SpecFor<T> & { strategy: S };
  readonly state: RolloutState;
  readonly control: RolloutControl;
  readonly lifecycle: Lifecycle;
  readonly target: T;
  /** Engine settings (a long fleet rollout continues as new), and the cursor of a continued run. */
  readonly run: Required<Pick<RolloutRun, 'maxEventsPerRun' | 'bulkFrom'>> & Pick<RolloutRun, 'cursor'>;
}

type StrategyOf<K extends RolloutSpecStrategy['type']> = Extract<RolloutSpecStrategy, { type: K }>;

export type Strategy<K extends RolloutSpecStrategy['type']> = (
  context: StrategyContext<StrategyOf<K>>,
) => Promise<RolloutResult>;

/** Every strategy, by the name a spec gives it. */
export const strategies: { readonly [K in RolloutSpecStrategy['type']]: Strategy<K> } = {
  rolling,
  recreate,
  'blue-green': blueGreen,
  canary,
  surge,
};

/** Runs the strategy the spec names. */
export function runStrategy(context: StrategyContext<RolloutSpecStrategy>): Promise<RolloutResult> {
  // The context's strategy is the one its type names; TypeScript can't follow that correlation through the map.
  const strategy = strategies[context.spec.strategy.type] as Strategy<RolloutSpecStrategy['type']>;
  return strategy(context);
}
