import { CancellationScope, condition, isCancellation, log, setHandler } from '@temporalio/workflow';
import { Patches } from './patches';
import type { SignalDefinition, UpdateDefinition } from '@temporalio/common';
import type {
  AcceptedCommand,
  OperatorCommand,
  PromoteCommand,
  RolloutPhase,
  RolloutStatus,
} from './messages';
import {
  endedRefusal,
  abortSignal,
  abortUpdate,
  pauseSignal,
  pauseUpdate,
  promoteSignal,
  promoteUpdate,
  resumeSignal,
  resumeUpdate,
} from './messages';
import type { ProgressDeadline } from '../spec/rollout';
import type { ControlSnapshot } from './continuation';
import type { RolloutState } from './state';
import { RolloutStopped } from './stop';

/** Thrown at a checkpoint once an operator aborted: the strategy rolls back. */
export class RolloutAborted extends RolloutStopped {
  override readonly name = 'RolloutAborted';
}

const finished: readonly RolloutPhase[] = ['succeeded', 'rolled-back', 'failed'];

/**
 * Before this, a gate that ended while an operator pause held set the phase back to progressing and dropped the
 * pause's waiting; a resume then restored the gate's 'paused', shown for the rest of the rollout.
 */
const operatorPauseOutlivesGate = 'operator-pause-outlives-gate';

/**
 * What operators can do to a running rollout: pause it (after the steps in flight), resume it, promote it past a
 * gate, abort it (roll back). Strategies call `checkpoint()` between steps and `gate()` where a spec asks for an
 * approval; both return at once, without yielding, when nothing is asked of them, so histories of rollouts
 * without operator commands are unchanged.
 */
export class RolloutControl {
  private paused?: { reason?: string; by?: string; phaseBefore: RolloutPhase };
  private abortedBy?: OperatorCommand;
  private atGate?: string;
  private promoted = false;
  private promotedFully = false;

  /** Made first, in the rollout's first workflow task: see Patches. */
  readonly patches = new Patches();

  /** `carried`: what operators asked of the run this one continues. */
  constructor(
    private readonly state: RolloutState,
    carried?: ControlSnapshot,
  ) {
    if (carried) this.restore(carried);
    this.install(
      pauseUpdate,
      pauseSignal,
      'pause',
      () => this.pauseProblem(),
      (c) => this.pause(c),
    );
    this.install(
      resumeUpdate,
      resumeSignal,
      'resume',
      () => this.resumeProblem(),
      (c) => this.resume(c),
    );
    this.install(
      promoteUpdate,
      promoteSignal,
      'promote',
      (c) => this.promoteProblem(c),
      (c) => this.promote(c),
    );
    this.install(
      abortUpdate,
      abortSignal,
      'abort',
      () => this.abortProblem(),
      (c) => this.abort(c),
    );
  }

  private restore(carried: ControlSnapshot): void {
    this.state.commands.push(...carried.commands);
    this.abortedBy = carried.aborted;
    if (carried.paused) {
      this.paused = carried.paused;
      this.state.waiting = this.pausedWaiting(carried.paused);
      // Already paused (and announced) in the run before: no second notification.
      this.state.phase = 'paused';
    }
  }

  /** What operators asked so far, for the next run of a long rollout. */
  snapshot(): ControlSnapshot {
    return {
      ...(this.paused ? { paused: this.paused } : {}),
      ...(this.abortedBy ? { aborted: this.abortedBy } : {}),
      commands: this.state.commands.map((c) => ({ ...c })),
    };
  }

  /**
   * The update answers the sender at once: its validator rejects a command that makes no sense now (the
   * rollout is not paused, already aborting, finished). The signal does the same silently, with a log line.
   */
  private install(
    update: UpdateDefinition<RolloutStatus, [PromoteCommand]>,
    signal: SignalDefinition<[PromoteCommand]>,
    name: string,
    problem: (command: PromoteCommand) => string | undefined,
    apply: (command: PromoteCommand) => void,
  ): void {
    setHandler(
      update,
      (command: PromoteCommand) => {
        apply(command);
        return this.state.status();
      },
      {
        validator: (command: PromoteCommand) => {
          const why = problem(command);
          if (why !== undefined) throw new Error(why);
        },
      },
    );
    setHandler(signal, (command: PromoteCommand) => {
      const why = problem(command);
      if (why === undefined) apply(command);
      else log.warn(`ignored the ${name} signal: ${why}`, { by: command.by, reason: command.reason });
    });
  }

  /** A `promote --full` waved every remaining step through. */
  get fullyPromoted(): boolean {
    return this.promotedFully;
  }

  /** The phase a paused rollout takes when it is resumed. */
  resumeInto(phase: RolloutPhase): void {
    if (this.paused) this.paused = { ...this.paused, phaseBefore: phase };
  }

  get isPaused(): boolean {
    return this.paused !== undefined;
  }

  get aborted(): OperatorCommand | undefined {
    return this.abortedBy;
  }

  /** Why the rollout was aborted, in words for its result. */
  abortReason(): string {
    const by = this.abortedBy?.by ? ` by ${this.abortedBy.by}` : '';
    return `aborted${by}${this.abortedBy?.reason ? `: ${this.abortedBy.reason}` : ''}`;
  }

  /**
   * Kept around each of the workflow's own waits (a pause, a gate, a sleep): a target's way of holding what the
   * rollout set on its infrastructure while nothing else runs, such as a load balancer's runtime state.
   */
  private holding: (<T>(wait: () => Promise<T>) => Promise<T>) | undefined;

  holdWhileWaiting(hold: <T>(wait: () => Promise<T>) => Promise<T>): void {
    this.holding = hold;
  }

  private waiting<T>(wait: () => Promise<T>): Promise<T> {
    return this.holding ? this.holding(wait) : wait();
  }

  /** Waits while paused; throws RolloutAborted once aborted. Returns without yielding when neither. */
  async checkpoint(): Promise<void> {
    if (this.abortedBy) throw new RolloutAborted(this.abortReason());
    // Again after each wait: what is held beside it stops only after the resume, and a pause may land meanwhile.
    while (this.paused && !this.abortedBy)
      await this.waiting(() => condition(() => this.paused === undefined || this.abortedBy !== undefined));
    if (this.abortedBy) throw new RolloutAborted(this.abortReason());
  }

  /**
   * An approval gate: waits for `promote` (or the timeout, if given; true when promoted), unless a full promote
   * already waved every gate through. Throws RolloutAborted once aborted.
   */
  async gate(name: string, timeoutMs?: number): Promise<boolean> {
    await this.checkpoint();
    if (this.promotedFully) return true;
    this.atGate = name;
    this.promoted = false;
    const phaseBefore = this.state.phase;
    this.state.setPhase('paused');
    this.state.waiting = {
      for: 'promote',
      at: name,
      ...(timeoutMs !== undefined ? { until: new Date(new Date().getTime() + timeoutMs).toISOString() } : {}),
    };
    const done = () => this.promoted || this.abortedBy !== undefined;
    const promoted = await this.waiting(async () =>
      timeoutMs === undefined ? (await condition(done), true) : condition(done, timeoutMs),
    );
    this.atGate = undefined;
    if (this.paused && this.patches.has(operatorPauseOutlivesGate)) {
      // An operator paused at the gate, and the gate ended (timed out) first: the pause holds, and says so.
      this.paused = { ...this.paused, phaseBefore };
      this.state.waiting = this.pausedWaiting(this.paused);
    } else {
      this.state.waiting = undefined;
      this.state.setPhase(phaseBefore);
    }
    if (this.abortedBy) throw new RolloutAborted(this.abortReason());
    await this.checkpoint();
    return promoted && this.promoted;
  }

  /**
   * Watches for a stuck rollout: when no step completes for `deadline.timeout` while the rollout progresses (not
   * paused, not at a gate), it aborts or pauses, as an operator would, recorded as sent by "progress deadline".
   * Runs beside the strategy until the rollout ends.
   */
  async watchProgress(deadline: ProgressDeadline): Promise<void> {
    let seen = this.state.progress;
    for (;;) {
      const moved = await condition(
        () => this.state.progress !== seen || finished.includes(this.state.phase),
        deadline.timeout,
      );
      if (finished.includes(this.state.phase)) return;
      if (!moved && this.state.phase === 'progressing' && !this.abortedBy) {
        const command = {
          by: 'progress deadline',
          reason: `no progress for ${Math.round(deadline.timeout / 1000)} s`,
        };
        if (deadline.action === 'abort') this.abort(command);
        else this.pause(command);
      }
      seen = this.state.progress;
    }
  }

  /**
   * Runs a step that waits on the infrastructure (a drain, a verification, pods becoming ready) so that an abort,
   * or the progress deadline, cuts it short: its activity is cancelled and RolloutAborted thrown at once, and the
   * rollback begins. Once aborted, steps run to their end: they are the rollback's own.
   */
  async cancelOnAbort<T>(step: () => Promise<T>): Promise<T> {
    // Rollouts recorded before steps were cut short waited for the step in flight.
    if (this.abortedBy || !this.patches.has('abort-cancels-step-in-flight')) return step();
    const scope = new CancellationScope();
    let settled = false;
    void condition(() => settled || this.abortedBy !== undefined).then(() => {
      if (!settled) scope.cancel();
    });
    try {
      return await scope.run(step);
    } catch (error) {
      if (this.abortedBy && isCancellation(error)) throw new RolloutAborted(this.abortReason());
      throw error;
    } finally {
      settled = true;
    }
  }

  /** Waits for `ms`, returning early when aborted (the caller's next checkpoint throws). */
  async sleep(ms: number): Promise<void> {
    const wait = () => condition(() => this.abortedBy !== undefined, ms);
    await (ms > 0 ? this.waiting(wait) : wait());
  }

  /** Each refusal says why, then what to do instead. */
  private terminalProblem(): string | undefined {
    const { target, phase } = this.state;
    if (finished.includes(phase)) return endedRefusal(target, phase);
    if (phase === 'rolling-back')
      return `the rollout is rolling back: \`baton watch ${target}\` follows it to its end, then \`baton retry ${target}\` starts it again`;
    if (this.abortedBy)
      return `the rollout is already aborting: \`baton watch ${target}\` follows its rollback`;
    return undefined;
  }

  private pauseProblem(): string | undefined {
    const { target } = this.state;
    return (
      this.terminalProblem() ??
      (this.paused
        ? `the rollout is already paused: \`baton resume ${target}\` continues it, \`baton abort ${target}\` rolls it back`
        : undefined)
    );
  }

  private resumeProblem(): string | undefined {
    if (this.terminalProblem()) return this.terminalProblem();
    if (this.paused) return undefined;
    const { target } = this.state;
    return this.atGate
      ? `the rollout waits at ${this.atGate} for promote, not resume: \`baton promote ${target}\` lets it past`
      : `the rollout is not paused: \`baton pause ${target}\` holds it`;
  }

  private promoteProblem(command: PromoteCommand): string | undefined {
    if (this.terminalProblem()) return this.terminalProblem();
    if (this.paused) return undefined;
    // Two operators promoting one gate at once: the gate passes once, and the second is told so. A --full still
    // has something to do while the gates ahead are not waved through.
    if (this.atGate && this.promoted && !(command.full && !this.promotedFully))
      return `the rollout was already promoted past ${this.atGate}: it moves on; \`baton pause ${this.state.target}\` holds it`;
    if (this.atGate) return undefined;
    return `nothing to promote: the rollout is progressing and waits at no gate; \`baton promote ${this.state.target}\` lets it past one once it waits there`;
  }

  private abortProblem(): string | undefined {
    return this.terminalProblem();
  }

  private record(command: AcceptedCommand['command'], sent: PromoteCommand): void {
    this.state.commands.push({
      command,
      at: new Date().toISOString(),
      ...(sent.by !== undefined ? { by: sent.by } : {}),
      ...(sent.reason !== undefined ? { reason: sent.reason } : {}),
      ...(sent.full ? { full: true } : {}),
    });
  }

  private pause(command: OperatorCommand): void {
    this.record('pause', command);
    this.paused = { ...command, phaseBefore: this.state.phase };
    this.state.waiting = this.pausedWaiting(command);
    this.state.setPhase('paused');
  }

  private pausedWaiting(command: { reason?: string }): RolloutStatus['waiting'] {
    return {
      for: 'resume',
      at: 'operator pause',
      ...(command.reason !== undefined ? { reason: command.reason } : {}),
    };
  }

  private resume(command: OperatorCommand): void {
    this.record('resume', command);
    this.unpause();
  }

  private unpause(): void {
    const before = this.paused?.phaseBefore ?? 'progressing';
    this.paused = undefined;
    this.state.waiting = this.atGate ? { for: 'promote', at: this.atGate } : undefined;
    this.state.setPhase(this.atGate ? 'paused' : before);
  }

  /** Promote lifts an operator pause too, as in Argo Rollouts. */
  private promote(command: PromoteCommand): void {
    this.record('promote', command);
    this.state.listener?.('promoted');
    if (command.full) this.promotedFully = true;
    if (this.paused) this.unpause();
    if (this.atGate) this.promoted = true;
  }

  private abort(command: OperatorCommand): void {
    this.record('abort', command);
    this.abortedBy = command;
  }
}
