import { proxyActivities, setHandler } from '@temporalio/workflow';
import type { FleetActivities } from '../../activities/fleet-activities';
import type { RolloutSpec } from '../../spec';
import { statusQuery } from '../../workflows/messages';

const acts = proxyActivities<FleetActivities>({ startToCloseTimeout: '1m' });

/**
 * A careless edit of rolloutWorkflow: it upgrades servers without detaching and draining them first. Replaying a
 * saved history with it must fail as nondeterministic, proving the replay tests catch such a change.
 */
export async function rolloutWorkflow(spec: RolloutSpec): Promise<void> {
  setHandler(statusQuery, () => {
    throw new Error('not used');
  });
  if (spec.target.kind !== 'fleet') return;
  const upgrade = spec.target.upgrade;
  if (!upgrade) return;
  for (const server of spec.target.servers) {
    await acts.upgradeServer({ server, upgrade, version: spec.version });
  }
}
