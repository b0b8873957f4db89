import type { Quantity } from './quantity';
import { resolveQuantity } from './quantity';

/**
 * Splits items into consecutive batches of the given size, the last one possibly smaller. A percent batch size
 * rounds up and is at least one, so every plan makes progress: 10 servers at "25%" -> batches of 3, 3, 3, 1.
 */
export function planBatches<T>(items: readonly T[], batchSize: Quantity): T[][] {
  const size = Math.max(1, resolveQuantity(batchSize, items.length, 'up'));
  const batches: T[][] = [];
  for (let start = 0; start < items.length; start += size) {
    batches.push(items.slice(start, start + size));
  }
  return batches;
}

/**
 * How many servers a fleet rollout may have out of rotation at once: the batch size, capped by maxUnavailable.
 * maxUnavailable rounds down like Kubernetes, but a fleet rollout with zero allowed out could never move, so a
 * value that rounds to zero is raised to one (Kubernetes does the same when both fence posts resolve to zero).
 */
export function maxServersOut(
  total: number,
  batchSize: Quantity,
  maxUnavailable: Quantity | undefined,
): number {
  const batch = Math.max(1, resolveQuantity(batchSize, total, 'up'));
  if (maxUnavailable === undefined) return Math.min(batch, Math.max(1, total));
  if (maxUnavailable.kind === 'count' && maxUnavailable.value === 0) {
    throw new RangeError(
      'maxUnavailable: a fleet rollout takes servers out of rotation, so it must allow at least 1',
    );
  }
  return Math.min(batch, Math.max(1, resolveQuantity(maxUnavailable, total, 'down')));
}
