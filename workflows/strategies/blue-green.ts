import type { BlueGreenStrategy } from '../../spec/rollout';
import type { RolloutResult } from '../messages';
import type { StrategyContext } from '../registry';

/**
 * Blue/green: a whole new set on the new version comes up beside the old one taking no request, verified (and
 * reachable through a preview where the target has one); then, automatically or at `promote`, all traffic
 * switches to it at once. The old set stays, idle, for scaleDownDelay as the instant way back, then goes.
 * Before or during the delay, a failure or an abort switches back.
 */
export async function blueGreen({
  spec,
  state,
  control,
  lifecycle,
  target,
}: StrategyContext<BlueGreenStrategy>): Promise<RolloutResult> {
  const { toMove, label } = await target.preflight();
  state.batches = 1;
  state.batch = 1;
  if (toMove === 0) return lifecycle.alreadyDone(label);
  lifecycle.progressing();
  return lifecycle.run(
    async () => {
      await control.checkpoint();
      await target.bringIn(toMove, { idle: true });
      if (!spec.strategy.autoPromote)
        await control.gate(`approval before switching ${target.trafficName} to ${spec.version}`);
      await control.checkpoint();
      await target.switchAll();
      await control.sleep(spec.strategy.scaleDownDelay);
      await control.checkpoint();
    },
    () => target.finish(),
  );
}
