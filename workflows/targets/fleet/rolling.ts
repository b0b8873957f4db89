import { continueAsNew } from '@temporalio/workflow';
import type { FleetServer, RollingStrategy } from '../../../spec/rollout';
import type { RollingCursor, ServerSetback } from '../../continuation';
import { compactVersions, HistoryBudget } from '../../continuation';
import { RolloutAborted } from '../../control';
import { forEachLimited } from '../../limit';
import type { RolloutResult } from '../../messages';
import { pauseAfter, pausesAfter } from '../../pauses';
import { count, failureBudgetExceeded, maxServersOut, planBatches } from '../../plan';
import type { StrategyContext } from '../../registry';
import type { rolloutWorkflow } from '../../rollout';
import type { RolloutState } from '../../state';
import { RolloutStopped } from '../../stop';
import type { ForwardStep, StepOutcome } from './steps';
import type { FleetRolloutTarget } from './target';

type Touched = { server: FleetServer; reached: ForwardStep };

/**
 * Rolling update of a fleet in place: a batch at a time, each server detached, drained, upgraded, verified and
 * attached, never more than maxUnavailable out of rotation. A failed server is put back on its old version at
 * once; past the failure budget, or when an operator aborts, every server the rollout changed is put back,
 * newest batch first. A pause takes effect before the next server starts.
 *
 * A fleet of thousands goes on in new runs (continue-as-new) whenever the next server would not fit in this
 * run's history; a run ends only with no server in flight, so its cursor is a count of servers started.
 */
export async function rollServerBatches({
  spec: rolloutSpec,
  state,
  control,
  lifecycle,
  target,
  run,
}: StrategyContext<RollingStrategy, FleetRolloutTarget>): Promise<RolloutResult> {
  const { cursor } = run;
  await target.preflight(cursor?.fromVersions);
  // A provisioned fleet's servers are known once the preflight has found them.
  const spec = { ...rolloutSpec, target: target.spec.target };
  const { steps, versions } = target;
  const { servers } = spec.target;
  const { maxUnavailable, pauseBetweenBatches } = spec.strategy;
  const batchSize = spec.strategy.batchSize ?? count(1);
  const budget = spec.failureBudget.maxFailPercent;
  const maxEventsPerRun = run.maxEventsPerRun;
  const history = new HistoryBudget(maxEventsPerRun);
  // A retried rollout leaves servers already on the version alone.
  const toMove = servers.filter((server) => versions[server.name] !== spec.version);
  const batches = planBatches(toMove, batchSize);
  const limit = maxServersOut(servers.length, batchSize, maxUnavailable);
  const bulk = limit >= run.bulkFrom;
  /** Whether anything waits after batch n: a pause the spec asks for there, or the pause between batches. */
  const pauseDueAfter = (n: number) =>
    pauseBetweenBatches > 0 || pausesAfter(spec.strategy.pauses, n).length > 0;
  state.batches = batches.length;
  // A run continuing a paused rollout stays paused.
  lifecycle.progressing();

  /** Servers the rollout touched, per batch, with the furthest step each reached: what a rollback undoes. */
  const touched: Touched[][] = batches.map(() => []);
  const setbacks = new Map((cursor?.setbacks ?? []).map((s) => [s.name, s]));
  const drainForced = new Set(cursor?.drainForced ?? []);
  let started = cursor?.started ?? 0;
  resumeFrom(cursor, batches, touched, state, spec.version);
  state.failedServers = cursor?.failedServers ?? 0;
  let stopReason: string | undefined = cursor?.rollback?.reason;
  let outOfHistory = false;
  /** The group a handover took out of rotation as the last one came back: started, not yet moving. */
  let ahead: { entries: Touched[]; detached: boolean } | undefined;

  /** Ends this run; the next goes on from the cursor. */
  const continueInNewRun = (rollback?: RollingCursor['rollback']): Promise<never> =>
    continueAsNew<typeof rolloutWorkflow>(spec, {
      maxEventsPerRun,
      bulkFrom: run.bulkFrom,
      cursor: {
        started,
        fromVersions: compactVersions(versions),
        setbacks: [...setbacks.values()],
        drainForced: [...drainForced],
        failedServers: state.failedServers,
        control: control.snapshot(),
        ...(rollback ? { rollback } : {}),
        runs: (cursor?.runs ?? 0) + 1,
      },
    });

  const setBack = (server: FleetServer, setback: Omit<ServerSetback, 'name'>) =>
    setbacks.set(server.name, { name: server.name, ...setback });

  lifecycle.onUndo('servers back on their old version', async () => {
    const problems = [...(cursor?.rollback?.problems ?? [])];
    // Newest batch first; a continued rollback skips the servers an earlier run settled.
    let settled = 0;
    const resumeAt = cursor?.rollback?.settled ?? 0;
    for (const batch of [...touched].reverse()) {
      const skip = Math.min(batch.length, Math.max(0, resumeAt - settled));
      settled += skip;
      await forEachLimited(batch.slice(skip), limit, async ({ server, reached }) => {
        if (outOfHistory) return;
        if (state.server(server.name).step === 'restored') {
          settled++;
          return;
        }
        if (!history.admit()) {
          outOfHistory = true;
          return;
        }
        settled++;
        const restored = await steps.restoreServer(server, reached);
        if (restored.ok) setBack(server, { reached: 'detach', step: 'restored' });
        else problems.push(`${server.name}: ${restored.error}`);
        history.release();
      });
      if (outOfHistory) await continueInNewRun({ reason: state.reason ?? '', settled, problems });
    }
    if (problems.length > 0) throw new Error(problems.join('; '));
  });

  return lifecycle.run(async () => {
    // A run continued in the middle of a rollback goes on with it.
    if (stopReason !== undefined) throw new RolloutStopped(stopReason);
    for (let index = batchOf(batches, started); stopReason === undefined && index < batches.length; index++) {
      const batch = batches[index];
      state.batch = index + 1;
      const batchTouched = touched[index];
      const waiting = batch.slice(started - startOf(batches, index));
      /** What follows a failed server: within the budget it is put back at once; past it, the rollout stops. */
      const failed = async (entry: Touched, outcome: Extract<StepOutcome, { ok: false }>) => {
        const { server } = entry;
        entry.reached = outcome.reached;
        if (outcome.aborted) {
          // Cut short by an abort: the rollback puts it back with the others.
          setBack(server, { reached: outcome.reached, step: 'failed', error: outcome.error });
          stopReason ??= outcome.error;
          return;
        }
        state.failedServers++;
        setBack(server, {
          reached: outcome.reached,
          step: 'failed',
          version: state.server(server.name).version,
          error: outcome.error,
        });
        if (failureBudgetExceeded(state.failedServers, servers.length, budget)) {
          stopReason ??= `${state.failedServers} of ${servers.length} servers failed, past the failure budget of ${budget}%; first: ${outcome.error}`;
          return;
        }
        const restored = await steps.restoreServer(server, outcome.reached);
        if (restored.ok) {
          entry.reached = 'detach';
          setBack(server, {
            reached: 'detach',
            step: 'restored',
            version: state.server(server.name).version,
          });
        } else stopReason ??= `could not put ${server.name} back on its old version: ${restored.error}`;
      };

      /**
       * Whether the next server (or group) may start: once stopping, none does (the ones already moving finish
       * their step first); a pause holds here; and it must fit in this run's history.
       */
      const mayStart = async (): Promise<boolean> => {
        if (stopReason !== undefined || outOfHistory) return false;
        try {
          await control.checkpoint();
        } catch (error) {
          if (!(error instanceof RolloutAborted)) throw error;
          stopReason ??= error.message;
          return false;
        }
        if (stopReason !== undefined || outOfHistory) return false;
        if (!history.admit()) {
          outOfHistory = true;
          return false;
        }
        return true;
      };

      if (bulk) {
        // Many servers out at once: each group of `limit` goes through each step as one activity.
        for (let offset = 0; offset < waiting.length; offset += limit) {
          const group = waiting.slice(offset, offset + limit);
          const handedOver = ahead;
          ahead = undefined;
          // A group the previous one's handover started is counted already; a stop leaves it to the rollback.
          if (handedOver ? stopReason !== undefined : !(await mayStart())) break;
          started += group.length;
          const entries =
            handedOver?.entries ?? group.map((server): Touched => ({ server, reached: 'attach' }));
          for (const entry of entries) entry.reached = 'attach';
          if (!handedOver) batchTouched.push(...entries);
          let admitted: { batch: number; entries: Touched[] } | undefined;
          /**
           * The group after this one (next in this batch, or first of the next when no pause is due between), if it
           * may start at once: counted as started here, taken out of rotation by the handover.
           */
          const next = (): FleetServer[] | undefined => {
            if (stopReason !== undefined || outOfHistory) return undefined;
            if (control.isPaused || control.aborted) return undefined;
            const following =
              offset + limit < waiting.length
                ? { batch: index, servers: waiting.slice(offset + limit, offset + 2 * limit) }
                : index + 1 < batches.length && !pauseDueAfter(index + 1)
                  ? { batch: index + 1, servers: batches[index + 1].slice(0, limit) }
                  : undefined;
            if (!following) return undefined;
            if (!history.admit()) {
              outOfHistory = true;
              return undefined;
            }
            // Until the group goes on, a rollback only has to bring it back into rotation.
            const admittedEntries = following.servers.map(
              (server): Touched => ({ server, reached: 'detach' }),
            );
            touched[following.batch].push(...admittedEntries);
            admitted = { batch: following.batch, entries: admittedEntries };
            return following.servers;
          };
          const move = await steps.moveServers(group, spec.version, {
            detached: handedOver?.detached ?? false,
            next,
          });
          if (admitted) {
            if (move.handedOver) ahead = { entries: admitted.entries, detached: move.handedOver.detached };
            else {
              // The handover failed and both groups are back in rotation: the next one starts as usual.
              touched[admitted.batch].splice(-admitted.entries.length);
              history.withdraw();
            }
          }
          for (const server of group) if (state.server(server.name).drainForced) drainForced.add(server.name);
          const failures = move.outcomes.flatMap(({ outcome }, i) =>
            outcome.ok ? [] : [{ entry: entries[i], outcome }],
          );
          // Failures count in order, so the budget stops at the same server whatever the timing.
          await forEachLimited(failures, limit, ({ entry, outcome }) => failed(entry, outcome));
          history.release();
        }
      } else {
        await forEachLimited(waiting, limit, async (server) => {
          if (!(await mayStart())) return;
          started++;
          const entry: Touched = { server, reached: 'attach' };
          batchTouched.push(entry);
          const outcome = await steps.moveServer(server, spec.version);
          if (state.server(server.name).drainForced) drainForced.add(server.name);
          if (!outcome.ok) await failed(entry, outcome);
          history.release();
        });
      }
      if (control.aborted) stopReason ??= control.abortReason();
      if (stopReason === undefined && outOfHistory) return continueInNewRun();
      if (stopReason === undefined && index < batches.length - 1)
        stopReason = await pauseAfter(control, spec.strategy.pauses, index + 1, `batch ${index + 1}`);
      if (stopReason !== undefined) break;
      if (pauseBetweenBatches > 0 && index < batches.length - 1) await control.sleep(pauseBetweenBatches);
    }
    if (stopReason !== undefined) throw new RolloutStopped(stopReason);
  });
}

function startOf(batches: readonly unknown[][], index: number): number {
  let start = 0;
  for (let i = 0; i < index; i++) start += batches[i].length;
  return start;
}

/** The batch holding the n-th server of the plan (the batch count when n is past the end). */
function batchOf(batches: readonly unknown[][], n: number): number {
  let start = 0;
  for (const [index, batch] of batches.entries()) {
    if (n < start + batch.length) return index;
    start += batch.length;
  }
  return batches.length;
}

/** Rebuilds, in a continued run, what the earlier runs did: each server's step and what a rollback undoes. */
function resumeFrom(
  cursor: RollingCursor | undefined,
  batches: readonly FleetServer[][],
  touched: Touched[][],
  state: RolloutState,
  version: string,
): void {
  if (!cursor) return;
  const setbacks = new Map(cursor.setbacks.map((s) => [s.name, s]));
  let n = 0;
  for (const [index, batch] of batches.entries()) {
    for (const server of batch) {
      if (n++ >= cursor.started) return;
      const setback = setbacks.get(server.name);
      touched[index].push({ server, reached: setback?.reached ?? 'attach' });
      if (!setback) state.update(server.name, { step: 'done', version });
      else
        state.update(server.name, {
          step: setback.step,
          ...(setback.version !== undefined ? { version: setback.version } : {}),
          ...(setback.error !== undefined ? { error: setback.error } : {}),
        });
      if (cursor.drainForced.includes(server.name)) state.update(server.name, { drainForced: true });
    }
  }
}
