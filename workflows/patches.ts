import { patched } from '@temporalio/workflow';

/** The patches made before patches were decided at start, each asked where its change is, in older rollouts. */
const legacyPatches = new Set([
  'abort-cancels-step-in-flight',
  'operator-pause-outlives-gate',
  'release-infrastructure-lock',
  'kubernetes-verify-pods',
  'kubernetes-rolling-as-pods-come',
  'kubernetes-rolling-fused-steps',
]);

/**
 * Patches decided in the first workflow task, one `patched()` each, besides the legacy ones. A new patch goes
 * here: a rollout started before it was deployed has its first task in its history without the marker, so it
 * replays with the old code; one started since records the marker there.
 */
const decidedAtStart = [
  'patches-decided-at-start',
  'load-balancer-reloads-restored',
  'lock-release-awaited',
] as const;

/**
 * The workflow changes a rollout has, decided in its first workflow task for every rollout started since.
 *
 * A `patched()` call made as a local activity resolves is recorded in the workflow task after the one holding the
 * local activity's marker, yet replay resolves the activity in the marker's own task, where that patch's marker
 * is not known yet: the call answers false, and the replay fails as nondeterministic. The crash matrix found it:
 * a worker killed during a group's upgrade, after the group's local detach, left a rollout no worker could
 * replay. In the first workflow task no local activity has run. Rollouts recorded before still ask each legacy
 * patch where they always did.
 */
export class Patches {
  private readonly atStart = new Map<string, boolean>(decidedAtStart.map((id) => [id, patched(id)]));

  /** Whether this rollout runs the code of patch `id`. */
  has(id: string): boolean {
    if (legacyPatches.has(id)) return this.atStart.get('patches-decided-at-start') === true || patched(id);
    const decided = this.atStart.get(id);
    if (decided === undefined)
      throw new Error(`patch ${id} is not decided at start: add it to decidedAtStart`);
    return decided;
  }
}
