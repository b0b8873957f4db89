import type { CanaryStrategy } from '../../spec/rollout';
import type { RolloutControl } from '../control';
import type { KubernetesRolloutSpec, KubernetesSteps } from '../kubernetes-steps';
import type { RolloutResult } from '../messages';
import { pauseAt } from '../pauses';
import { canaryCount } from '../plan';
import type { RolloutState } from '../state';
import { begin, finished, restoreStable, stopReasonOf, succeed } from './kubernetes-replace';
import { rollBack } from './outcome';

/** A canary step's failure: the rollout stops and rolls back with this reason. */
class CanaryStopped extends Error {}

/**
 * Canary on Kubernetes, by replica ratio (the Service selects both versions' pods): `setWeight` scales the new
 * version's Deployment up to that share of the desired replicas, then the old one down by as many, so capacity
 * never dips. `analysis` watches the canary pods for its window: all available, none restarting. After the last
 * step the new version goes to full and the old one to 0. A failure or an abort brings the old one back to full
 * first, then removes the new one.
 */
export async function canaryKubernetesStrategy(
  spec: KubernetesRolloutSpec & { strategy: CanaryStrategy },
  state: RolloutState,
  steps: KubernetesSteps,
  control: RolloutControl,
): Promise<RolloutResult> {
  const started = await begin(spec, state, steps);
  if (!('preflight' in started)) return started;
  const { preflight, show } = started;
  const desired = preflight.replicas;
  state.canary = { weight: 0, step: 0, steps: spec.strategy.steps.length, canaries: 0, analyses: [] };
  state.batches = spec.strategy.steps.length + 1;
  state.setPhase('progressing');

  let next: string | undefined;
  let canaries = 0;
  const setWeight = async (name: string, weight: number) => {
    const wanted = canaryCount(desired, weight);
    if (wanted > canaries) {
      show('next', name, spec.version, wanted, canaries);
      const up = await steps.scale(name, wanted, 'up');
      canaries = wanted;
      show('next', name, spec.version, up.replicas, up.available);
      state.setCanary({ canaries });
    }
    const down = await steps.scale(preflight.stable, desired - canaries, 'down');
    show('stable', preflight.stable, preflight.fromVersion, down.replicas, down.available);
    state.setCanary({ weight: Math.round((10_000 * canaries) / desired) / 100 });
  };

  let stopReason: string | undefined;
  try {
    next = (await steps.ensureVersionDeployment(preflight.stable)).name;
    show('next', next, spec.version, 0, 0);
    for (const [index, step] of spec.strategy.steps.entries()) {
      if (control.fullyPromoted) break;
      const number = index + 1;
      state.batch = number;
      state.setCanary({ step: number });
      await control.checkpoint();
      if ('setWeight' in step) {
        await setWeight(next, step.setWeight);
      } else if ('analysis' in step) {
        const summary = `analysis ${number}: ${canaries} pods of ${next} for ${Math.round(step.analysis.window / 1000)} s`;
        try {
          await steps.watchCanary(next, canaries, step.analysis.window, summary);
          state.canary.analyses.push({
            step: number,
            passed: true,
            at: new Date().toISOString(),
            summary,
            problems: [],
          });
        } catch (error) {
          const problem = stopReasonOf(error);
          state.canary.analyses.push({
            step: number,
            passed: false,
            at: new Date().toISOString(),
            summary,
            problems: [problem],
          });
          throw new CanaryStopped(`analysis at step ${number} failed: ${problem}`);
        } finally {
          state.progress++;
        }
      } else {
        const stop = await pauseAt(control, step.pause, `at step ${number}`);
        if (stop !== undefined) throw new CanaryStopped(stop);
      }
    }
    state.batch = spec.strategy.steps.length + 1;
    state.setCanary({ step: spec.strategy.steps.length + 1 });
    await control.checkpoint();
    await setWeight(next, 100);
  } catch (error) {
    stopReason = stopReasonOf(error);
  }

  if (stopReason === undefined) return succeed(steps, state, started, spec.version);
  await rollBack(state, stopReason, async () => {
    await restoreStable(steps, started, spec.version, next);
    state.setCanary({ weight: 0, canaries: 0 });
  });
  return finished(state, spec.version, stopReason);
}
