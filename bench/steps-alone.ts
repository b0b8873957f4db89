import { MockActivityEnvironment } from '@temporalio/testing';
import type { ActivityDeps } from '../activities';
import { createActivities } from '../activities';
import type { RolloutSpec } from '../spec';

/**
 * The rollout's steps as the workflow runs them for groups (see GroupMove in workflows/targets/fleet/steps.ts),
 * each the same activity, called one after the other: the preflight (every server answers), the first group
 * detached, then for each group drain, upgrade, verify, and one hand-over that attaches it and detaches the next;
 * the last group is attached.
 */
export async function stepsAlone(spec: RolloutSpec, deps: ActivityDeps): Promise<void> {
  const verify = spec.verify?.http;
  if (spec.target.kind !== 'fleet' || !spec.target.upgrade || !verify)
    throw new Error('the floor rolls a fleet with an upgrade command and verify.http');
  const upgrade = spec.target.upgrade;
  const acts = createActivities(deps);
  const env = new MockActivityEnvironment();
  const call = <I, R>(activity: (input: I) => Promise<R>, input: I): Promise<R> => env.run(activity, input);
  const loadBalancer = spec.target.loadBalancer.haproxy;
  const fleetServers = spec.target.servers;
  const size = Math.ceil((fleetServers.length * 10) / 100);
  const groups = Array.from({ length: Math.ceil(fleetServers.length / size) }, (_, i) =>
    fleetServers.slice(i * size, (i + 1) * size),
  );
  const names = (group: typeof fleetServers) => group.map((server) => server.name);
  const failedAny = (outcomes: Record<string, string | undefined>) => {
    const failed = Object.entries(outcomes).filter(([, why]) => why !== undefined);
    if (failed.length > 0) throw new Error(`floor: ${failed[0]?.[0]}: ${failed[0]?.[1]}`);
  };
  await call(acts.preflightFleet, { loadBalancer, servers: fleetServers, verify });
  await call(acts.detachServers, { loadBalancer, servers: names(groups[0] ?? []) });
  for (const [i, group] of groups.entries()) {
    const drained = await call(acts.drainServers, {
      loadBalancer,
      servers: names(group),
      policy: spec.drain,
    });
    failedAny(drained.failed);
    failedAny(
      await call(acts.upgradeServers, {
        servers: group,
        upgrade,
        version: spec.version,
        verify,
        loadBalancer,
      }),
    );
    failedAny(await call(acts.verifyServers, { servers: group, verify, version: spec.version }));
    const next = groups[i + 1];
    if (next) await call(acts.handOverServers, { loadBalancer, attach: names(group), detach: names(next) });
    else await call(acts.attachServers, { loadBalancer, servers: names(group) });
  }
}
