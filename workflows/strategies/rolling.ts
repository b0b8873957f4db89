import { patched } from '@temporalio/workflow';
import type { RolloutControl } from '../control';
import { RolloutAborted } from '../control';
import { pauseAfter } from '../pauses';
import type { FleetServer, RollingStrategy } from '../../spec/rollout';
import type { ForwardStep, FleetRolloutSpec, FleetSteps } from '../fleet-steps';
import { forEachLimited } from '../limit';
import type { RolloutResult } from '../messages';
import { count, failureBudgetExceeded, maxServersOut, planBatches } from '../plan';
import type { RolloutState } from '../state';
import { preflightOrReject, rollBack } from './outcome';

/**
 * Rolling update of a fleet: a batch at a time, each server detached, drained, upgraded, verified and attached,
 * never more than maxUnavailable out of rotation. A failed server is put back on its old version at once; past
 * the failure budget, or when an operator aborts, every server the rollout changed is put back, newest batch
 * first. A pause takes effect before the next server starts.
 */
export async function rollingFleetStrategy(
  spec: FleetRolloutSpec & { strategy: RollingStrategy },
  state: RolloutState,
  steps: FleetSteps,
  control: RolloutControl,
): Promise<RolloutResult> {
  const { servers } = spec.target;
  const { maxUnavailable, pauseBetweenBatches } = spec.strategy;
  const batchSize = spec.strategy.batchSize ?? count(1);
  const budget = spec.failureBudget.maxFailPercent;

  const versions = await preflightOrReject(state, () => steps.preflight());
  for (const server of servers)
    state.update(server.name, { fromVersion: versions[server.name], version: versions[server.name] });
  // A retried rollout leaves servers already on the version alone; rollouts started before this moved them all.
  const toMove = patched('skip-servers-on-version')
    ? servers.filter((server) => versions[server.name] !== spec.version)
    : servers;
  for (const server of servers) if (!toMove.includes(server)) state.update(server.name, { step: 'done' });
  const first = toMove[0] ?? servers[0];
  const firstVersion = first && versions[first.name];
  // Rollouts started before BatonFromVersion was upserted replay without the command.
  if (firstVersion !== undefined && patched('upsert-from-version')) state.setFromVersion(firstVersion);

  const batches = planBatches(toMove, batchSize);
  const limit = maxServersOut(servers.length, batchSize, maxUnavailable);
  state.batches = batches.length;
  state.setPhase('progressing');

  /** Servers the rollout touched, per batch, with the furthest step each reached: what a rollback undoes. */
  const touched: Array<Array<{ server: FleetServer; reached: ForwardStep }>> = [];
  let stopReason: string | undefined;

  for (const [index, batch] of batches.entries()) {
    state.batch = index + 1;
    const batchTouched: Array<{ server: FleetServer; reached: ForwardStep }> = [];
    touched.push(batchTouched);
    await forEachLimited(batch, limit, async (server) => {
      // Once stopping, start no new server; the ones already moving finish their step first.
      if (stopReason !== undefined) return;
      try {
        await control.checkpoint();
      } catch (error) {
        if (!(error instanceof RolloutAborted)) throw error;
        stopReason ??= error.message;
        return;
      }
      if (stopReason !== undefined) return;
      const entry: { server: FleetServer; reached: ForwardStep } = { server, reached: 'attach' };
      batchTouched.push(entry);
      const outcome = await steps.moveServer(server, spec.version);
      if (outcome.ok) return;
      entry.reached = outcome.reached;
      state.failedServers++;
      if (failureBudgetExceeded(state.failedServers, servers.length, budget)) {
        stopReason ??= `${state.failedServers} of ${servers.length} servers failed, past the failure budget of ${budget}%; first: ${outcome.error}`;
        return;
      }
      const restored = await steps.restoreServer(server, outcome.reached);
      if (restored.ok) entry.reached = 'detach';
      else stopReason ??= `could not put ${server.name} back on its old version: ${restored.error}`;
    });
    if (control.aborted) stopReason ??= control.abortReason();
    if (stopReason === undefined && index < batches.length - 1)
      stopReason = await pauseAfter(control, spec.strategy.pauses, index + 1, `batch ${index + 1}`);
    if (stopReason !== undefined) break;
    if (pauseBetweenBatches > 0 && index < batches.length - 1) await control.sleep(pauseBetweenBatches);
  }

  if (stopReason === undefined) {
    state.setPhase('succeeded');
    return { phase: 'succeeded', toVersion: spec.version, servers: state.status().servers };
  }

  await rollBack(state, stopReason, async () => {
    const problems: string[] = [];
    for (const batch of [...touched].reverse()) {
      await forEachLimited(batch, limit, async ({ server, reached }) => {
        if (state.server(server.name).step === 'restored') return;
        const restored = await steps.restoreServer(server, reached);
        if (!restored.ok) problems.push(`${server.name}: ${restored.error}`);
      });
    }
    if (problems.length > 0) throw new Error(problems.join('; '));
  });
  return {
    phase: 'rolled-back',
    reason: stopReason,
    toVersion: spec.version,
    servers: state.status().servers,
  };
}
