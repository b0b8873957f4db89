import type { CanaryAnalysis, CanaryStrategy } from '../../spec/rollout';
import type { RolloutResult } from '../messages';
import { pauseAt } from '../pauses';
import { canaryCount, count, percent, resolveQuantity } from '../plan';
import type { StrategyContext } from '../registry';
import { RolloutStopped } from '../stop';

/**
 * Canary: the spec's steps run in order. `setWeight` moves that share of the capacity to the new version (at
 * least one unit) and sends it that share of requests; `pause` waits (timed, or for `promote`); `analysis`
 * watches the new version against the old over a window and stops the rollout when it fails. After the last
 * step traffic is even again and the rest moves, in batches. A failed step, a failed analysis or an abort takes
 * the canary's share away first, then puts the moved capacity back on the old version.
 */
export async function canary({
  spec,
  state,
  control,
  lifecycle,
  target,
}: StrategyContext<CanaryStrategy>): Promise<RolloutResult> {
  const { size, toMove, label } = await target.preflight();
  if (toMove === 0) return lifecycle.alreadyDone(label);
  const { steps } = spec.strategy;
  // Units a retried rollout finds already on the version count as canaries from the start.
  let canaries = size - toMove;
  state.canary = { weight: 0, step: 0, steps: steps.length, canaries, analyses: [] };
  state.batches = steps.length + 1;
  lifecycle.progressing();
  lifecycle.onUndo('canary status', () => {
    state.setCanary({ weight: 0, canaries: 0 });
    return Promise.resolve();
  });

  /** Moves `units`; in place one at a time, as until its weight is set a new server takes a stable one's share. */
  const move = async (units: number, parallel: number) => {
    for (let left = units; left > 0; ) {
      const now = target.surges ? left : Math.min(left, parallel);
      await control.checkpoint();
      await target.replace(now, now);
      left -= now;
      canaries += now;
      state.setCanary({ canaries });
    }
  };

  const setWeight = async (weight: number) => {
    const wanted = canaryCount(size, weight);
    if (wanted > canaries) await move(wanted - canaries, 1);
    state.setCanary({ weight: await target.shiftTraffic(weight) });
  };

  const analyse = async (analysis: CanaryAnalysis, step: number) => {
    const observation = await target.observe(analysis, step);
    state.canary?.analyses.push({ step, at: new Date().toISOString(), ...observation });
    state.progress++;
    if (!observation.passed)
      throw new RolloutStopped(`analysis at step ${step} failed: ${observation.problems.join('; ')}`);
  };

  return lifecycle.run(
    async () => {
      for (const [index, step] of steps.entries()) {
        if (control.fullyPromoted) break;
        const number = index + 1;
        state.batch = number;
        state.setCanary({ step: number });
        await control.checkpoint();
        if ('setWeight' in step) await setWeight(step.setWeight);
        else if ('analysis' in step) await analyse(step.analysis, number);
        else {
          const stop = await pauseAt(control, step.pause, `at step ${number}`);
          if (stop !== undefined) throw new RolloutStopped(stop);
        }
      }

      // Promotion: traffic by capacity again, then the rest moves; where new capacity surges, all at once.
      state.batch = steps.length + 1;
      state.setCanary({ step: steps.length + 1 });
      await control.checkpoint();
      await target.evenTraffic();
      const batchSize = spec.strategy.batchSize ?? (target.surges ? percent(100) : count(1));
      await move(size - canaries, Math.max(1, resolveQuantity(batchSize, size, 'up')));
      state.setCanary({ weight: 100 });
    },
    () => target.finish(),
  );
}
