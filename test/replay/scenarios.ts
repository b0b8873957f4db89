import { InMemoryFleet } from '../../activities/fakes/in-memory-fleet';
import type { RolloutSpec } from '../../spec';
import type { RolloutRun } from '../../workflows/continuation';
import { inMemoryFleetSpec, serverNames } from '../helpers/specs';

/** The rollouts whose histories are saved for replay: one per path through the workflow. */
export interface ReplayScenario {
  readonly name: string;
  fleet(): InMemoryFleet;
  readonly spec: RolloutSpec;
  /** Engine settings: a small event limit makes a long rollout of a few dozen servers; its last run is saved. */
  readonly run?: RolloutRun;
}

export const replayScenarios: readonly ReplayScenario[] = [
  {
    name: 'rolling-succeeds',
    fleet: () => new InMemoryFleet(serverNames(5), 'v1', { inFlightOnDetach: 2 }),
    spec: inMemoryFleetSpec(5, {}, 'replay-ok'),
  },
  {
    name: 'rolling-rolls-back',
    fleet: () => new InMemoryFleet(serverNames(4), 'v1', { brokenVersions: ['v2'] }),
    spec: inMemoryFleetSpec(4, {}, 'replay-back'),
  },
  {
    name: 'rolling-within-budget',
    fleet: () => new InMemoryFleet(serverNames(5), 'v1', { failingUpgrades: { 'web-2': 'v2' } }),
    spec: inMemoryFleetSpec(5, { failureBudget: { maxFailPercent: 20 } }, 'replay-budget'),
  },
  {
    name: 'recreate-succeeds',
    fleet: () => new InMemoryFleet(serverNames(3), 'v1'),
    spec: inMemoryFleetSpec(3, { strategy: { type: 'recreate' } }, 'replay-recreate'),
  },
  {
    name: 'canary-succeeds',
    fleet: () => new InMemoryFleet(serverNames(5), 'v1'),
    spec: inMemoryFleetSpec(
      5,
      {
        strategy: {
          type: 'canary',
          steps: [{ setWeight: 20 }, { analysis: { window: '200ms' } }, { setWeight: 60 }],
          batchSize: 2,
        },
      },
      'replay-canary',
    ),
  },
  {
    name: 'canary-rolls-back',
    fleet: () => new InMemoryFleet(serverNames(5), 'v1', { errorRates: { v2: 0.5 } }),
    spec: inMemoryFleetSpec(
      5,
      { strategy: { type: 'canary', steps: [{ setWeight: 40 }, { analysis: { window: '200ms' } }] } },
      'replay-canary-back',
    ),
  },
  {
    name: 'rolling-continued-run',
    fleet: () => new InMemoryFleet(serverNames(30), 'v1'),
    spec: inMemoryFleetSpec(30, { strategy: { type: 'rolling', batchSize: 4 } }, 'replay-long'),
    run: { maxEventsPerRun: 300 },
  },
  {
    name: 'rolling-rollback-continued-run',
    fleet: () => new InMemoryFleet(serverNames(40), 'v1', { failingUpgrades: { 'web-33': 'v2' } }),
    spec: inMemoryFleetSpec(40, { strategy: { type: 'rolling', batchSize: 4 } }, 'replay-long-back'),
    run: { maxEventsPerRun: 300 },
  },
  {
    name: 'rolling-bulk-one-fails',
    fleet: () => new InMemoryFleet(serverNames(20), 'v1', { failingUpgrades: { 'web-4': 'v2' } }),
    spec: inMemoryFleetSpec(
      20,
      { strategy: { type: 'rolling', batchSize: 10 }, failureBudget: { maxFailPercent: 10 } },
      'replay-bulk',
    ),
  },
];
