import type { CanaryAnalysis, HookCommand } from '../../spec/rollout';
import type { AnalysisRecord } from '../messages';

/** What a target runs before a rollout changes it. */
export interface TargetBaseline {
  /** Units of capacity: the fleet's servers, or the Deployment's desired replicas. */
  readonly size: number;
  /** How many of them still run another version: 0 when the target already runs the one rolled out. */
  readonly toMove: number;
  /** What runs, as a whole, in "… already runs v2": "every server", or the Deployment. */
  readonly label: string;
}

/** The analysis of a canary, as a target records it (the strategy adds the step and the time). */
export type Observation = Omit<AnalysisRecord, 'step' | 'at'>;

/**
 * The operations a strategy needs from the infrastructure it rolls, named for what they mean to a rollout, so
 * one strategy runs on a fleet behind HAProxy and on Kubernetes alike. Capacity is counted in units: a server,
 * or a replica.
 *
 * Every operation that changes the target registers its inverse with the rollout's lifecycle before it acts, so
 * an abort or a failure from any point is undone newest first. Each waits until its change holds (drained,
 * verified, available) and throws when it can't, which stops the rollout.
 */
export interface RolloutTarget {
  readonly kind: 'fleet' | 'kubernetes';

  /**
   * Whether new capacity can join beside the old before the old leaves (Kubernetes; a fleet Baton provisions),
   * rather than a unit being taken out, upgraded in place and brought back.
   */
  readonly surges: boolean;

  /** What takes the traffic, as an approval names it: the fleet, or the Service. */
  readonly trafficName: string;

  /** Reads what the target runs and checks every unit answers; changes nothing. */
  preflight(): Promise<TargetBaseline>;

  /**
   * Moves `units` of capacity from the old version to the new, at most `parallel` at once, never dropping a
   * request. In place: each server is detached, drained, upgraded, verified and attached. Surging: new capacity
   * comes up verified and takes traffic (new servers created, or the new Deployment scaled up and its pods
   * available), then as much of the oldest leaves (detached and drained, or scaled down, pods leaving the
   * Service first). Inverse: the moved units back on the old version, the new capacity gone.
   */
  replace(units: number, parallel: number): Promise<void>;

  /**
   * Takes `units` of the old version out of service: detached and drained, or scaled down. Kept where it can be
   * (servers stay alive) as the way back until the rollout succeeds. Inverse: back in service.
   */
  takeOut(units: number): Promise<void>;

  /**
   * Brings `units` of the new version in: upgraded in place (into the servers taken out), created, or scaled up,
   * each verified. `idle`: they take no request yet, until `switchAll`. Inverse: they leave service and go
   * (servers put back on their old version, or destroyed; the new Deployment scaled to 0 and deleted).
   */
  bringIn(units: number, options?: { idle?: boolean }): Promise<void>;

  /** Sends every request to the new version at once, and none to the old. Inverse: every request back to the old. */
  switchAll(): Promise<void>;

  /**
   * Sends `weight` percent of requests to the new version's units (HAProxy weights; on Kubernetes the replica
   * ratio is the share). Returns the share it reached, in percent. Inverse: the share back to none.
   */
  shiftTraffic(weight: number): Promise<number>;

  /** Ends a traffic shift: every unit takes its share by capacity again. */
  evenTraffic(): Promise<void>;

  /** Watches the new version against the old for the analysis's window. */
  observe(analysis: CanaryAnalysis, step: number): Promise<Observation>;

  /** The spec's pre-step (a migration), once, while neither version serves. No inverse: it must be re-runnable. */
  runHook(hook: HookCommand): Promise<void>;

  /**
   * After success: the old version's capacity kept as the way back goes (servers destroyed; the old Deployment
   * scaled to 0, the Service's own selector back, older Deployments pruned).
   */
  finish(): Promise<void>;
}
