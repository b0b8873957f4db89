import { workflowInfo } from '@temporalio/workflow';
import type { ForwardStep } from './targets/fleet/steps';
import type { AcceptedCommand, OperatorCommand, RolloutPhase } from './messages';

/**
 * Temporal warns past 10,240 events in one run and terminates a run at 51,200: a rollout of thousands of servers
 * goes on in a new run (continue-as-new) before that, carrying a cursor. Kept under the warning, with room.
 */
export const defaultMaxEventsPerRun = 10_000;

/**
 * From this many servers out at once, a rolling rollout moves them as a group, one activity per step: below it,
 * each server's steps are its own activities (each step of each server in the Temporal UI, and no waiting on
 * the slowest of a group); above it, a batch of a hundred would cost five hundred activities, and the engine's
 * overhead would grow with the batch.
 */
export const defaultBulkFrom = 10;

/** What an operator asked of the rollout, carried into the next run. */
export interface ControlSnapshot {
  readonly paused?: OperatorCommand & { readonly phaseBefore: RolloutPhase };
  readonly aborted?: OperatorCommand;
  readonly commands: readonly AcceptedCommand[];
}

/** A server of a continued rolling rollout that did not simply reach `done`. */
export interface ServerSetback {
  readonly name: string;
  /** The furthest step it reached; `detach` once restored (only attaching is left to undo, and it was). */
  readonly reached: ForwardStep;
  readonly step: 'failed' | 'restored';
  readonly version?: string;
  readonly error?: string;
}

/**
 * The versions the fleet ran before the rollout, for thousands of servers: most share one, so it is named once
 * and the others listed.
 */
export interface CompactVersions {
  readonly common?: string;
  readonly others: Readonly<Record<string, string>>;
}

/** Where a rolling fleet rollout stands between two runs. */
export interface RollingCursor {
  /** How many of the servers to move were started (and settled) in earlier runs, in plan order. */
  readonly started: number;
  readonly fromVersions: CompactVersions;
  readonly setbacks: readonly ServerSetback[];
  readonly drainForced: readonly string[];
  readonly failedServers: number;
  readonly control: ControlSnapshot;
  /** Set once the rollout is rolling back: why, how many servers (newest first) are settled, what went wrong. */
  readonly rollback?: {
    readonly reason: string;
    readonly settled: number;
    readonly problems: readonly string[];
  };
  /** Runs before this one. */
  readonly runs: number;
}

/** The second argument of the rollout workflow: engine settings, and the cursor of a continued run. */
export interface RolloutRun {
  readonly maxEventsPerRun?: number;
  /** From how many servers out at once a rolling rollout moves them as a group, one activity per step. */
  readonly bulkFrom?: number;
  readonly cursor?: RollingCursor;
}

export function compactVersions(versions: Readonly<Record<string, string>>): CompactVersions {
  const counts = new Map<string, number>();
  for (const version of Object.values(versions)) counts.set(version, (counts.get(version) ?? 0) + 1);
  let common: string | undefined;
  for (const [version, count] of counts)
    if (common === undefined || count > (counts.get(common) ?? 0)) common = version;
  const others: Record<string, string> = {};
  for (const [name, version] of Object.entries(versions)) if (version !== common) others[name] = version;
  return common === undefined ? { others } : { common, others };
}

export function expandVersions(compact: CompactVersions, names: readonly string[]): Record<string, string> {
  const versions: Record<string, string> = {};
  for (const name of names) {
    const version = compact.others[name] ?? compact.common;
    if (version !== undefined) versions[name] = version;
  }
  return versions;
}

/**
 * Decides whether one more server's steps fit in this run's history. A server costs about 16 events when many
 * move at once (activity scheduled, started, completed for each step; workflow tasks shared) and up to 30 when
 * one moves at a time: the estimate starts at the worst case and follows what this run measured.
 */
export class HistoryBudget {
  private readonly startLength = workflowInfo().historyLength;
  private readonly reserve: number;
  private inFlight = 0;
  private settled = 0;

  constructor(private readonly maxEvents: number) {
    // Room for what is not a server's steps: pauses, operator commands, the continue-as-new itself.
    this.reserve = Math.min(500, Math.floor(maxEvents / 20));
  }

  /** True when one more server fits (and counts it in flight); a run always takes at least one. */
  admit(): boolean {
    const length = workflowInfo().historyLength;
    const perServer =
      this.settled >= 10 ? Math.max(8, Math.ceil(((length - this.startLength) / this.settled) * 1.25)) : 32;
    const fits = length + (this.inFlight + 1) * perServer + this.reserve <= this.maxEvents;
    if (!fits && (this.inFlight > 0 || this.settled > 0)) return false;
    this.inFlight++;
    return true;
  }

  /** Gives back an admission whose server did not start after all. */
  withdraw(): void {
    this.inFlight--;
  }

  release(): void {
    this.inFlight--;
    this.settled++;
  }
}
