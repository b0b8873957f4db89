import { ApplicationFailure, ContinueAsNew } from '@temporalio/workflow';
import type { RolloutControl } from './control';
import type { RolloutResult } from './messages';
import type { RolloutState } from './state';
import { failureMessage } from './stop';

interface UndoEntry {
  readonly kind: string;
  readonly run: () => Promise<void>;
}

/**
 * The shape every strategy shares: preflight (a failure there ends the rollout before any change), forward
 * steps, then either success or the undo stack run newest first; one stop reason, one result.
 *
 * A target registers an inverse when it first makes a change of a kind ("the new Deployment exists", "old
 * servers out of rotation"). The entry undoes every change of that kind the rollout made, reading the target's
 * own record of them when it runs, so each kind is registered once, at the position of its first change.
 */
export class Lifecycle {
  private readonly undoStack: UndoEntry[] = [];

  constructor(
    private readonly state: RolloutState,
    private readonly control: RolloutControl,
    private readonly toVersion: string,
  ) {}

  /** Registers how to undo changes of `kind`, unless it is registered already. */
  onUndo(kind: string, run: () => Promise<void>): void {
    if (!this.undoStack.some((entry) => entry.kind === kind)) this.undoStack.push({ kind, run });
  }

  /** Ends a rollout that must not start: failed, with the reason, before anything changed. */
  reject(problem: string): never {
    const reason = `rejected before any change: ${problem}`;
    this.state.setPhase('failed', reason);
    throw ApplicationFailure.nonRetryable(reason, 'PreflightFailed');
  }

  /** Runs a preflight; when it fails, the rollout ends as failed before any change. */
  async preflight<T>(preflight: () => Promise<T>): Promise<T> {
    try {
      return await preflight();
    } catch (error) {
      return this.reject(failureMessage(error));
    }
  }

  /**
   * The rollout starts changing its target. A pause accepted during the preflight still holds: the phase stays
   * paused, and becomes progressing once it is resumed.
   */
  progressing(): void {
    if (this.control.isPaused) this.control.resumeInto('progressing');
    else this.state.setPhase('progressing');
  }

  /** A rollout with nothing to change: `label` ("every server", the Deployment) already runs the version. */
  alreadyDone(label: string): RolloutResult {
    this.state.setPhase('succeeded', `${label} already runs ${this.toVersion}`);
    return this.result();
  }

  /**
   * Runs the forward steps. When they end, a pause sent meanwhile still holds (and an abort still rolls back)
   * before success is declared; then `finish` retires what the old version left. Anything that stops them (an
   * abort, a failed step or analysis, a gate timing out) rolls back: the undo stack, newest first.
   */
  async run(forward: () => Promise<void>, finish?: () => Promise<void>): Promise<RolloutResult> {
    let stopReason: string | undefined;
    try {
      await forward();
      await this.control.checkpoint();
    } catch (error) {
      // A rollout that goes on in a new run has not stopped.
      if (error instanceof ContinueAsNew) throw error;
      stopReason = failureMessage(error);
    }
    if (stopReason === undefined) {
      await finish?.();
      this.state.setPhase('succeeded');
      return this.result();
    }
    await this.rollBack(stopReason);
    return this.result(stopReason);
  }

  /**
   * The phase is rolling-back while the undo stack runs, then rolled-back. An entry that fails stops the
   * rollback there (what it guards may still serve): the rollout fails with both reasons, for an operator to
   * finish by hand.
   */
  private async rollBack(stopReason: string): Promise<void> {
    this.state.setPhase('rolling-back', stopReason);
    try {
      for (const entry of [...this.undoStack].reverse()) await entry.run();
    } catch (error) {
      // A long rollback goes on in the next run.
      if (error instanceof ContinueAsNew) throw error;
      const reason = `${stopReason}; the rollback did not complete: ${failureMessage(error)}`;
      this.state.setPhase('failed', reason);
      throw ApplicationFailure.nonRetryable(reason, 'RollbackIncomplete');
    }
    this.state.setPhase('rolled-back');
  }

  /** The result of the rollout as it stands: every server's or Deployment's status. */
  private result(stopReason?: string): RolloutResult {
    const status = this.state.status();
    return {
      phase: stopReason === undefined ? 'succeeded' : 'rolled-back',
      ...(stopReason !== undefined ? { reason: stopReason } : {}),
      toVersion: this.toVersion,
      servers: status.servers,
      ...(status.kubernetes ? { kubernetes: status.kubernetes } : {}),
    };
  }
}
