import { continueAsNew, patched } from '@temporalio/workflow';
import type { RolloutControl } from '../control';
import { RolloutAborted } from '../control';
import type { RollingCursor, RolloutRun, ServerSetback } from '../continuation';
import { compactVersions, expandVersions, HistoryBudget } from '../continuation';
import { pauseAfter, pausesAfter } from '../pauses';
import type { FleetServer, RollingStrategy } from '../../spec/rollout';
import type { ForwardStep, FleetRolloutSpec, FleetSteps, StepOutcome } from '../fleet-steps';
import { forEachLimited } from '../limit';
import type { RolloutResult } from '../messages';
import { count, failureBudgetExceeded, maxServersOut, planBatches } from '../plan';
import type { rolloutWorkflow } from '../rollout';
import type { RolloutState } from '../state';
import { preflightOrReject, rollBack } from './outcome';

type Touched = { server: FleetServer; reached: ForwardStep };

/**
 * Rolling update of a fleet: a batch at a time, each server detached, drained, upgraded, verified and attached,
 * never more than maxUnavailable out of rotation. A failed server is put back on its old version at once; past
 * the failure budget, or when an operator aborts, every server the rollout changed is put back, newest batch
 * first. A pause takes effect before the next server starts.
 *
 * A fleet of thousands goes on in new runs (continue-as-new) whenever the next server would not fit in this
 * run's history; a run ends only with no server in flight, so its cursor is a count of servers started.
 */
export async function rollingFleetStrategy(
  spec: FleetRolloutSpec & { strategy: RollingStrategy },
  state: RolloutState,
  steps: FleetSteps,
  control: RolloutControl,
  run: Required<Pick<RolloutRun, 'maxEventsPerRun' | 'bulkFrom'>> & Pick<RolloutRun, 'cursor'>,
): Promise<RolloutResult> {
  const { servers } = spec.target;
  const { maxUnavailable, pauseBetweenBatches } = spec.strategy;
  const batchSize = spec.strategy.batchSize ?? count(1);
  const budget = spec.failureBudget.maxFailPercent;
  const { cursor } = run;
  const history = new HistoryBudget(run.maxEventsPerRun);

  const versions = cursor
    ? expandVersions(
        cursor.fromVersions,
        servers.map((s) => s.name),
      )
    : await preflightOrReject(state, () => steps.preflight());
  for (const server of servers)
    state.update(server.name, { fromVersion: versions[server.name], version: versions[server.name] });
  // A retried rollout leaves servers already on the version alone; rollouts started before this moved them all.
  const toMove = patched('skip-servers-on-version')
    ? servers.filter((server) => versions[server.name] !== spec.version)
    : servers;
  const moving = new Set(toMove);
  for (const server of servers) if (!moving.has(server)) state.update(server.name, { step: 'done' });
  const first = toMove[0] ?? servers[0];
  const firstVersion = first && versions[first.name];
  // Rollouts started before BatonFromVersion was upserted replay without the command.
  if (firstVersion !== undefined && patched('upsert-from-version')) state.setFromVersion(firstVersion);

  const batches = planBatches(toMove, batchSize);
  const limit = maxServersOut(servers.length, batchSize, maxUnavailable);
  // Rollouts started before bulk steps existed moved every server on its own.
  const bulk = limit >= run.bulkFrom && patched('bulk-steps');
  // Rollouts started before handovers attached a group and detached the next as two commands.
  const handOver = bulk && patched('load-balancer-handover');
  /** Whether anything waits after batch n: a pause the spec asks for there, or the pause between batches. */
  const pauseDueAfter = (n: number) =>
    pauseBetweenBatches > 0 || pausesAfter(spec.strategy.pauses, n).length > 0;
  state.batches = batches.length;
  // A run continuing a paused rollout stays paused.
  if (!(cursor && control.isPaused)) state.setPhase('progressing');

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
      maxEventsPerRun: run.maxEventsPerRun,
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

  for (let index = batchOf(batches, started); stopReason === undefined && index < batches.length; index++) {
    const batch = batches[index];
    state.batch = index + 1;
    const batchTouched = touched[index];
    const waiting = batch.slice(started - startOf(batches, index));
    /** What follows a failed server: within the budget it is put back at once; past it, the rollout stops. */
    const failed = async (entry: Touched, outcome: Extract<StepOutcome, { ok: false }>) => {
      const { server } = entry;
      entry.reached = outcome.reached;
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
        setBack(server, { reached: 'detach', step: 'restored', version: state.server(server.name).version });
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
          if (!handOver || stopReason !== undefined || outOfHistory) return undefined;
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
          const admittedEntries = following.servers.map((server): Touched => ({ server, reached: 'detach' }));
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

  if (stopReason === undefined) {
    state.setPhase('succeeded');
    return { phase: 'succeeded', toVersion: spec.version, servers: state.status().servers };
  }

  const reason = stopReason;
  await rollBack(state, reason, async () => {
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
      if (outOfHistory) await continueInNewRun({ reason, settled, problems });
    }
    if (problems.length > 0) throw new Error(problems.join('; '));
  });
  return {
    phase: 'rolled-back',
    reason,
    toVersion: spec.version,
    servers: state.status().servers,
  };
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
