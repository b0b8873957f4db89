import type { Fenceposts } from './surge';

/** One side of a Kubernetes rolling change: a Deployment's desired replicas and how many pods are available. */
export interface ReplicaCount {
  readonly replicas: number;
  readonly available: number;
}

export type ReplicaStep =
  /** Scale the version being rolled to up to `replicas`, then wait for them to be available. */
  | { readonly kind: 'scale-up'; readonly replicas: number }
  /** Scale the version being replaced down to `replicas`, then wait for its pods to be gone. */
  | { readonly kind: 'scale-down'; readonly replicas: number }
  /** Nothing may move until the pods already asked for become available. */
  | { readonly kind: 'wait' }
  | { readonly kind: 'done' };

/**
 * The next move of a rolling change from one Deployment to another, holding both promises a Deployment makes:
 * never more than desired + maxSurge pods, never fewer than desired - maxUnavailable available. Like the
 * Deployment controller it scales the new side up first, then takes away what the new pods made room for; pods
 * of the old side that are not available can always go, since removing them costs no capacity.
 *
 * nextReplicaStep(10, {maxSurge: 3, maxUnavailable: 2}, {replicas: 10, available: 10}, {replicas: 0, available: 0})
 *   -> scale-up to 3; then, with those 3 available, scale-down to 5; then scale-up to 8; ...
 */
export function nextReplicaStep(
  desired: number,
  fenceposts: Fenceposts,
  from: ReplicaCount,
  to: ReplicaCount,
): ReplicaStep {
  if (from.replicas === 0 && to.replicas >= desired) {
    return to.available >= desired ? { kind: 'done' } : { kind: 'wait' };
  }
  const room = desired + fenceposts.maxSurge - (from.replicas + to.replicas);
  if (to.replicas < desired && room > 0) {
    return { kind: 'scale-up', replicas: Math.min(desired, to.replicas + room) };
  }
  if (from.replicas > 0) {
    const minAvailable = Math.max(0, desired - fenceposts.maxUnavailable);
    const fromAvailable = Math.min(from.available, from.replicas);
    const spareAvailable = Math.max(0, fromAvailable + to.available - minAvailable);
    const keep = fromAvailable - Math.min(fromAvailable, spareAvailable);
    if (keep < from.replicas) return { kind: 'scale-down', replicas: keep };
  }
  return { kind: 'wait' };
}
