import type { RollingStrategy } from '../../spec/rollout';
import type { RolloutResult } from '../messages';
import { count } from '../plan';
import type { StrategyContext } from '../registry';
import { rollServerBatches } from '../targets/fleet/rolling';
import { convergeReplicas } from '../targets/kubernetes/rolling';
import { replaceInRounds } from './surge';

/**
 * Rolling update: a little of the old version at a time is replaced by the new, old and new serving side by
 * side, and a pause holds before the next step starts.
 *
 * The steps differ by target, and so does the algorithm behind this one strategy. A fleet moves servers in
 * batches, each server through detach, drain, upgrade, verify and attach, within a failure budget, and a fleet
 * of thousands continues as new with a cursor; `method: replace` is surge with small rounds. Kubernetes
 * converges two Deployments' replica counts within maxSurge and maxUnavailable, or hands the Deployment to its
 * own controller (native mode).
 */
export function rolling(context: StrategyContext<RollingStrategy>): Promise<RolloutResult> {
  const { target, spec } = context;
  if (target.kind === 'kubernetes')
    return convergeReplicas({ ...context, target, spec: { ...spec, target: target.specTarget } });
  if (spec.strategy.method === 'replace')
    return replaceInRounds(context, {
      batchSize: spec.strategy.batchSize ?? count(1),
      pauses: spec.strategy.pauses,
      pauseBetweenBatches: spec.strategy.pauseBetweenBatches,
    });
  return rollServerBatches({
    ...context,
    target,
    spec: { ...spec, target: target.spec.target, verify: target.spec.verify },
  });
}
