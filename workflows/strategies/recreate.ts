import type { RecreateStrategy } from '../../spec/rollout';
import type { RolloutResult } from '../messages';
import type { StrategyContext } from '../registry';

/**
 * Recreate, for versions that can't run side by side: all of the old version leaves service, the optional
 * pre-step runs (a migration), then the new version comes in, verified. Requests arriving while nothing serves
 * fail: that is the point of recreate. Any failure, or an abort, takes the new version out before the old one
 * comes back.
 */
export async function recreate({
  spec,
  state,
  control,
  lifecycle,
  target,
}: StrategyContext<RecreateStrategy>): Promise<RolloutResult> {
  const { toMove, label } = await target.preflight();
  if (toMove === 0) return lifecycle.alreadyDone(label);
  state.batches = 1;
  state.batch = 1;
  lifecycle.progressing();
  return lifecycle.run(
    async () => {
      await control.checkpoint();
      await target.takeOut(toMove);
      if (spec.strategy.preStep) {
        await control.checkpoint();
        await target.runHook(spec.strategy.preStep);
      }
      await control.checkpoint();
      await target.bringIn(toMove);
    },
    () => target.finish(),
  );
}
