import type { CanaryAnalysis, CanaryStrategy, FleetServer } from '../../spec/rollout';
import type { RolloutControl } from '../control';
import { RolloutAborted } from '../control';
import type { FleetRolloutSpec, FleetSteps, ForwardStep } from '../fleet-steps';
import { failureMessage } from '../fleet-steps';
import { forEachLimited } from '../limit';
import type { RolloutResult } from '../messages';
import { pauseAt } from '../pauses';
import { canaryCount, canaryWeights, count, judgeCanary, planBatches, resolveQuantity } from '../plan';
import type { RolloutState } from '../state';
import { preflightOrReject, rollBack } from './outcome';

/** A canary step's failure: the rollout stops and rolls back with this reason. */
class CanaryStopped extends Error {}

/** Workflow time: deterministic inside a workflow. */
const now = () => new Date().toISOString();

/**
 * Canary on a fleet: the spec's steps run in order. `setWeight` moves as many servers to the new version as the
 * share of the fleet (at least one), one at a time through the five steps, then sets HAProxy weights so the
 * canary servers get that share of requests. `pause` waits (timed, or for `promote`). `analysis` compares the
 * canary servers' 5xx rate and response time with the stable servers' over a window, from HAProxy's counters.
 * After the last step every server gets its weight back and the rest move in batches. A failed step, a failed
 * analysis or an abort sends the canary as little traffic as HAProxy's weights allow, puts each canary server
 * back on its old version, and restores the weights.
 */
export async function canaryFleetStrategy(
  spec: FleetRolloutSpec & { strategy: CanaryStrategy },
  state: RolloutState,
  steps: FleetSteps,
  control: RolloutControl,
): Promise<RolloutResult> {
  const { servers } = spec.target;
  const total = servers.length;
  const versions = await preflightOrReject(state, () => steps.preflight());
  for (const server of servers)
    state.update(server.name, { fromVersion: versions[server.name], version: versions[server.name] });
  const first = servers.find((s) => versions[s.name] !== spec.version) ?? servers[0];
  if (first && versions[first.name] !== undefined) state.setFromVersion(versions[first.name] ?? '');
  const initial = await steps.sample('read weights');
  const initialWeights = Object.fromEntries(servers.map((s) => [s.name, initial[s.name]?.weight ?? 1]));

  // Servers a retried rollout finds already on the version count as canaries from the start.
  const canaries: FleetServer[] = servers.filter((s) => versions[s.name] === spec.version);
  const stables = () => servers.filter((s) => !canaries.includes(s));
  for (const server of canaries) state.update(server.name, { step: 'done' });
  state.canary = {
    weight: 0,
    step: 0,
    steps: spec.strategy.steps.length,
    canaries: canaries.length,
    analyses: [],
  };
  state.batches = spec.strategy.steps.length + 1;
  state.setPhase('progressing');

  /** Servers the rollout moved, with the furthest step each reached: what a rollback undoes. */
  const touched: Array<{ server: FleetServer; reached: ForwardStep }> = [];
  const move = async (server: FleetServer) => {
    const entry: { server: FleetServer; reached: ForwardStep } = { server, reached: 'attach' };
    touched.push(entry);
    const outcome = await steps.moveServer(server, spec.version);
    if (!outcome.ok) {
      entry.reached = outcome.reached;
      state.failedServers++;
      throw new CanaryStopped(`${server.name} failed: ${outcome.error}`);
    }
  };

  const setWeight = async (weight: number) => {
    const wanted = canaryCount(total, weight);
    while (canaries.length < wanted) {
      const next = stables()[0];
      if (!next) break;
      await control.checkpoint();
      // Until its weight is set the new server takes a stable server's share; one at a time keeps that small.
      await move(next);
      canaries.push(next);
      state.setCanary({ canaries: canaries.length });
    }
    const weights = canaryWeights(total, canaries.length, weight);
    await steps.setWeights(
      Object.fromEntries(
        servers.map((s) => [s.name, canaries.includes(s) ? weights.canary : weights.stable]),
      ),
      `canary ${weight}%`,
    );
    state.setCanary({ weight: Math.round(weights.share * 100) / 100 });
  };

  const analyse = async (analysis: CanaryAnalysis, step: number) => {
    const canaryNames = canaries.map((s) => s.name);
    const stableNames = stables().map((s) => s.name);
    const before = await steps.sample(`analysis ${step}: start`);
    await control.sleep(analysis.window);
    await control.checkpoint();
    const after = await steps.sample(`analysis ${step}: end`);
    const verdict = judgeCanary(analysis, canaryNames, stableNames, before, after);
    state.canary?.analyses.push({
      step,
      passed: verdict.passed,
      at: now(),
      canary: verdict.canary,
      stable: verdict.stable,
      problems: verdict.problems,
    });
    state.progress++;
    if (!verdict.passed)
      throw new CanaryStopped(`analysis at step ${step} failed: ${verdict.problems.join('; ')}`);
  };

  let stopReason: string | undefined;
  try {
    for (const [index, step] of spec.strategy.steps.entries()) {
      if (control.fullyPromoted) break;
      const number = index + 1;
      state.batch = number;
      state.setCanary({ step: number });
      await control.checkpoint();
      if ('setWeight' in step) await setWeight(step.setWeight);
      else if ('analysis' in step) await analyse(step.analysis, number);
      else {
        const stop = await pauseAt(control, step.pause, `at step ${number}`);
        if (stop !== undefined) throw new CanaryStopped(stop);
      }
    }

    // Promotion: every server gets its weight back, then the rest move in batches.
    state.batch = spec.strategy.steps.length + 1;
    state.setCanary({ step: spec.strategy.steps.length + 1 });
    await control.checkpoint();
    await steps.setWeights(initialWeights, 'promote: restore weights');
    const rest = stables();
    const batchSize = spec.strategy.batchSize ?? count(1);
    const limit = Math.max(1, resolveQuantity(batchSize, total, 'up'));
    for (const batch of planBatches(rest, batchSize)) {
      await control.checkpoint();
      await forEachLimited(batch, limit, async (server) => {
        await move(server);
        canaries.push(server);
      });
      state.setCanary({ canaries: canaries.length });
    }
    state.setCanary({ weight: 100 });
  } catch (error) {
    stopReason =
      error instanceof RolloutAborted || error instanceof CanaryStopped
        ? error.message
        : failureMessage(error);
  }

  if (stopReason === undefined) {
    state.setPhase('succeeded');
    return { phase: 'succeeded', toVersion: spec.version, servers: state.status().servers };
  }

  await rollBack(state, stopReason, async () => {
    const moved = touched.map((t) => t.server.name);
    if (moved.length > 0 && moved.length < total) {
      // The canary's share drops first, before each of its servers is taken back one by one.
      await steps.setWeights(
        Object.fromEntries(servers.map((s) => [s.name, moved.includes(s.name) ? 1 : 256])),
        'rollback: canary to the least weight',
      );
    }
    state.setCanary({ weight: 0 });
    const problems: string[] = [];
    for (const { server, reached } of [...touched].reverse()) {
      const restored = await steps.restoreServer(server, reached);
      if (!restored.ok) problems.push(`${server.name}: ${restored.error}`);
    }
    await steps.setWeights(initialWeights, 'rollback: restore weights');
    if (problems.length > 0) throw new Error(problems.join('; '));
  });
  return {
    phase: 'rolled-back',
    reason: stopReason,
    toVersion: spec.version,
    servers: state.status().servers,
  };
}
