import type { PauseStep, RolloutPause } from '../spec/rollout';
import type { RolloutControl } from './control';
import { RolloutAborted } from './control';

const seconds = (ms: number) =>
  ms % 60_000 === 0 ? `${ms / 60_000}m` : ms < 1000 ? `${ms}ms` : `${Math.round(ms / 1000)}s`;

/** The spec's pauses that fall after point `n` ("batch 1", "step 2"). */
export function pausesAfter(pauses: readonly RolloutPause[] | undefined, n: number): readonly RolloutPause[] {
  // Specs of rollouts started before pauses existed carry none.
  return (pauses ?? []).filter((pause) => pause.after === n);
}

/**
 * Runs the spec's pauses that fall after point `n` ("batch 1", "step 2"): timed pauses end on their own or at
 * `promote`; approval gates wait for `promote`, up to their timeout. Returns why the rollout must stop (an abort,
 * or a gate that timed out with onTimeout abort), or undefined to go on.
 */
export async function pauseAfter(
  control: RolloutControl,
  pauses: readonly RolloutPause[] | undefined,
  n: number,
  point: string,
): Promise<string | undefined> {
  for (const pause of pausesAfter(pauses, n)) {
    const stop = await pauseAt(control, pause, `after ${point}`);
    if (stop !== undefined) return stop;
  }
  return undefined;
}

/**
 * One pause ("after batch 2", "at step 3"): a timed pause, or an approval gate. Returns why the rollout must
 * stop, or undefined to go on.
 */
export async function pauseAt(
  control: RolloutControl,
  pause: PauseStep,
  point: string,
): Promise<string | undefined> {
  try {
    if (pause.duration !== undefined) {
      await control.gate(`pause ${point} (${seconds(pause.duration)})`, pause.duration);
      return undefined;
    }
    const promoted = await control.gate(`approval ${point}`, pause.timeout);
    if (!promoted && pause.onTimeout === 'abort' && pause.timeout !== undefined)
      return `the approval ${point} timed out after ${seconds(pause.timeout)} with no promote`;
    return undefined;
  } catch (error) {
    if (error instanceof RolloutAborted) return error.message;
    throw error;
  }
}
