import { patched } from '@temporalio/workflow';

/**
 * The workflow changes a rollout has, decided in its first workflow task for every rollout started since.
 *
 * A `patched()` call made as a local activity resolves is recorded in the workflow task after the one holding the
 * local activity's marker, yet replay resolves the activity in the marker's own task, where that patch's marker
 * is not known yet: the call answers false, and the replay fails as nondeterministic. The crash matrix found it:
 * a worker killed during a group's upgrade, after the group's local detach, left a rollout no worker could
 * replay. In the first workflow task no local activity has run. Rollouts recorded before still ask each patch
 * where they always did.
 */
export class Patches {
  private readonly decidedAtStart = patched('patches-decided-at-start');

  /** Whether this rollout runs the code of patch `id` (every rollout started since patches-decided-at-start). */
  has(id: string): boolean {
    return this.decidedAtStart || patched(id);
  }
}
