import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { realActivityDeps } from '../../activities';
import { createFleetActivities } from '../../activities/fleet-activities';
import { HaproxyTrafficProvider } from '../../activities/haproxy/traffic-provider';
import { countStarts, hostVersions, upgradeCommands } from '../../infra/fleet/hosts';
import type { LocalFleet } from '../../infra/fleet/local-fleet';
import { startLoad } from '../../infra/load';
import { delay } from '../../infra/processes';
import { parseRolloutSpec } from '../../spec';
import type { FleetTarget } from '../../spec';
import { statusQuery } from '../../workflows/messages';
import { startTestFleet } from '../helpers/fleet';
import { startRolloutInProcess, until } from '../helpers/rollout';
import type { TestTemporal } from '../helpers/temporal';
import { connectTestTemporal } from '../helpers/temporal';

let temporal: TestTemporal;
const fleets: LocalFleet[] = [];
before(async () => {
  temporal = await connectTestTemporal();
});
after(async () => {
  await Promise.all(fleets.map((f) => f.stop()));
  await temporal.close();
});

async function fleetOf(options: Parameters<typeof startTestFleet>[0]): Promise<LocalFleet> {
  const fleet = await startTestFleet(options);
  fleets.push(fleet);
  return fleet;
}

describe('HAProxy reloaded mid-rollout (-sf, same configuration)', () => {
  it('forgets the drains set through the Runtime API: the loss Baton has to repair', async () => {
    const fleet = await fleetOf({ servers: 2, version: 'v1' });
    const traffic = new HaproxyTrafficProvider(fleet.haproxy.socket, 'web');
    await traffic.detach('web-2');
    assert.deepEqual(await traffic.undrained(['web-1', 'web-2']), ['web-1']);
    const before = fleet.haproxy.pid;
    await fleet.haproxy.reload();
    assert.notEqual(fleet.haproxy.pid, before, 'a new HAProxy process');
    assert.deepEqual(await traffic.undrained(['web-1', 'web-2']), ['web-1', 'web-2']);
  });

  it('an upgrade puts its server back out of rotation when a reload brings it back', async () => {
    const fleet = await fleetOf({ servers: 2, version: 'v1' });
    const spec = parseRolloutSpec(fleet.spec({ version: 'v2' }));
    const target = spec.target as FleetTarget;
    const traffic = new HaproxyTrafficProvider(fleet.haproxy.socket, 'web');
    const activities = createFleetActivities(realActivityDeps());
    await activities.detachServer({ loadBalancer: target.loadBalancer.haproxy, server: 'web-2' });
    // An upgrade command that takes 3 s, and a reload 300 ms into it
    const upgrading = new MockActivityEnvironment().run(activities.upgradeServer, {
      server: target.servers[1],
      upgrade: { argv: [process.execPath, '-e', 'setTimeout(() => {}, 3000)'], timeout: 10_000 },
      version: 'v2',
      loadBalancer: target.loadBalancer.haproxy,
    });
    await delay(300);
    await fleet.haproxy.reload();
    const reloadedAt = Date.now();
    let backOutAfterMs: number | undefined;
    let finished = false;
    void upgrading.finally(() => (finished = true));
    while (!finished) {
      const lost = await traffic.undrained(['web-2']);
      if (lost.length === 0 && backOutAfterMs === undefined) backOutAfterMs = Date.now() - reloadedAt;
      // Once back out, it stays out until the upgrade is over.
      if (backOutAfterMs !== undefined) assert.deepEqual(lost, [], 'web-2 stayed out of rotation');
      await delay(20);
    }
    await upgrading;
    assert.ok(backOutAfterMs !== undefined && backOutAfterMs < 1_000, `back out after ${backOutAfterMs} ms`);
    assert.deepEqual(await traffic.undrained(['web-2']), []);
  });

  it('a rolling rollout under load survives a reload while a server is upgraded', async () => {
    const fleet = await fleetOf({ servers: 3, version: 'v1', defaults: { latencyMs: 5, startupMs: 1_500 } });
    const load = startLoad({ url: `${fleet.haproxy.frontendUrl}/`, ratePerSecond: 100 });
    const { handle, stop } = await startRolloutInProcess(
      temporal,
      realActivityDeps(),
      parseRolloutSpec(fleet.spec({ version: 'v2' }, 'reload-mid-rollout')),
    );
    try {
      // When HAProxy is reloaded as web-2 is being upgraded
      await until(async () => {
        const status = await handle.query(statusQuery).catch(() => undefined);
        return status?.servers.find((s) => s.name === 'web-2')?.step === 'upgrade';
      });
      await fleet.haproxy.reload();
      // Then web-2 is out of rotation again while its upgrade and verification go on
      const traffic = new HaproxyTrafficProvider(fleet.haproxy.socket, 'web');
      let outAgain = false;
      for (;;) {
        const step = (await handle.query(statusQuery)).servers.find((s) => s.name === 'web-2')?.step;
        if (step !== 'upgrade' && step !== 'verify') break;
        if ((await traffic.undrained(['web-2'])).length === 0) outAgain = true;
        await delay(20);
      }
      assert.ok(outAgain, 'web-2 was detached again before it was attached');
      const result = await handle.result();
      await delay(300);
      const stats = await load.stop();
      // And the rollout finished, each server got one upgrade command, and no request failed
      assert.equal(result.phase, 'succeeded', result.reason);
      assert.deepEqual(Object.values(await hostVersions(fleet.dir)), ['v2', 'v2', 'v2']);
      const commands = (await upgradeCommands(fleet.dir)).filter((c) => c.version === 'v2');
      assert.deepEqual(commands.map((c) => c.name).sort(), ['web-1', 'web-2', 'web-3']);
      const starts = (await countStarts(fleet.dir)).filter((s) => s.version === 'v2');
      assert.equal(starts.length, 3);
      assert.ok(stats.sent > 200, `sent ${stats.sent}`);
      assert.equal(stats.failed, 0, `failed requests: ${JSON.stringify(stats.errors)}`);
    } finally {
      await load.stop().catch(() => undefined);
      await stop();
    }
  });
});
