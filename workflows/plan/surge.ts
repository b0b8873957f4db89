import type { Quantity } from './quantity';
import { resolveQuantity } from './quantity';

export interface Fenceposts {
  /** Pods or servers that may exist above the desired count during the rollout. */
  readonly maxSurge: number;
  /** Pods or servers that may be missing below the desired count during the rollout. */
  readonly maxUnavailable: number;
}

/**
 * Resolves maxSurge and maxUnavailable against the desired count the way Kubernetes' Deployment controller does:
 * surge rounds up, unavailable rounds down. Both written as zero is an error (the rollout could never move);
 * when percentages both round down to zero, unavailable becomes 1 so the rollout still progresses.
 *
 * resolveFenceposts(10, percent(25), percent(25)) -> { maxSurge: 3, maxUnavailable: 2 }
 * resolveFenceposts(3, percent(10), percent(10))  -> { maxSurge: 1, maxUnavailable: 0 }
 * resolveFenceposts(3, count(0), percent(10))     -> { maxSurge: 0, maxUnavailable: 1 }
 */
export function resolveFenceposts(desired: number, maxSurge: Quantity, maxUnavailable: Quantity): Fenceposts {
  if (maxSurge.value === 0 && maxUnavailable.value === 0) {
    throw new RangeError(
      'maxSurge and maxUnavailable: both are 0, so the rollout could never move; allow at least one',
    );
  }
  const surge = resolveQuantity(maxSurge, desired, 'up');
  const unavailable = resolveQuantity(maxUnavailable, desired, 'down');
  if (surge === 0 && unavailable === 0) return { maxSurge: 0, maxUnavailable: 1 };
  return { maxSurge: surge, maxUnavailable: unavailable };
}
