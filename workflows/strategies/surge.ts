import type { RolloutPause, SurgeStrategy } from '../../spec/rollout';
import type { RolloutResult } from '../messages';
import { pauseAfter } from '../pauses';
import type { Quantity } from '../plan';
import { resolveQuantity } from '../plan';
import type { RolloutSpecStrategy, StrategyContext } from '../registry';
import { RolloutStopped } from '../stop';

/**
 * Surge then retire oldest: each round brings up as much new capacity as its batch (all of it by default: the
 * target doubles), verified and serving, then takes as much of the oldest out. Capacity never dips. The old
 * version's capacity is kept as the way back until success; any failure or abort brings it back and removes
 * the new.
 */
export function surge(context: StrategyContext<SurgeStrategy>): Promise<RolloutResult> {
  return replaceInRounds(context, { batchSize: context.spec.strategy.batchSize });
}

/** Rounds of `replace`, with the spec's pauses between them: surge, and rolling by replacement. */
export async function replaceInRounds(
  { state, control, lifecycle, target }: StrategyContext<RolloutSpecStrategy>,
  options: { batchSize: Quantity; pauses?: readonly RolloutPause[]; pauseBetweenBatches?: number },
): Promise<RolloutResult> {
  const baseline = await target.preflight();
  if (baseline.toMove === 0) return lifecycle.alreadyDone(baseline.label);
  const perRound = Math.max(1, resolveQuantity(options.batchSize, baseline.toMove, 'up'));
  const rounds = Math.ceil(baseline.toMove / perRound);
  state.batches = rounds;
  lifecycle.progressing();
  return lifecycle.run(
    async () => {
      for (let round = 1, moved = 0; moved < baseline.toMove; round++) {
        state.batch = round;
        await control.checkpoint();
        const units = Math.min(perRound, baseline.toMove - moved);
        await target.replace(units, units);
        moved += units;
        if (round === rounds) break;
        const stop = await pauseAfter(control, options.pauses, round, `batch ${round}`);
        if (stop !== undefined) throw new RolloutStopped(stop);
        if (options.pauseBetweenBatches) await control.sleep(options.pauseBetweenBatches);
      }
    },
    () => target.finish(),
  );
}
