import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { realActivityDeps } from '../../activities';
import { runtimeApiUsage } from '../../activities/haproxy/runtime-api';
import { HaproxyTrafficProvider } from '../../activities/haproxy/traffic-provider';
import { hostVersions, upgradeCommands } from '../../infra/fleet/hosts';
import type { LocalFleet } from '../../infra/fleet/local-fleet';
import { startLoad } from '../../infra/load';
import { delay } from '../../infra/processes';
import { parseRolloutSpec } from '../../spec';
import { startTestFleet, useFleets } from '../helpers/fleet';
import { runRollout, until } from '../helpers/rollout';

const { temporal } = useFleets();
const servers = 60;
let fleet: LocalFleet;
before(async () => {
  fleet = await startTestFleet({
    servers,
    version: 'v1',
    farm: true,
    defaults: { latencyMs: 20, startupMs: 300 },
  });
  const traffic = new HaproxyTrafficProvider(fleet.haproxy.socket, 'web');
  const names = fleet.servers.map((server) => server.name);
  await until(
    async () => Object.values(await traffic.trafficOf(names)).every((t) => t.status === 'UP'),
    30_000,
  );
});
after(() => fleet?.stop());

/** Runtime API commands `work` sent from this process. */
async function commandsOf(work: () => Promise<unknown>): Promise<number> {
  const before = runtimeApiUsage.commands;
  await work();
  return runtimeApiUsage.commands - before;
}

describe('a fleet of 60 servers in one process behind one HAProxy', () => {
  it('reads a group of servers with one command each, whatever the size of the backend', async () => {
    const traffic = new HaproxyTrafficProvider(fleet.haproxy.socket, 'web');
    await traffic.trafficOf(['web-1']); // learns the backend's server ids
    let readings: Record<string, { status: string }> = {};
    const sent = await commandsOf(
      async () => (readings = await traffic.trafficOf(['web-3', 'web-40', 'web-60'])),
    );
    assert.equal(sent, 3);
    assert.deepEqual(Object.keys(readings), ['web-3', 'web-40', 'web-60']);
    assert.deepEqual(
      Object.values(readings).map((reading) => reading.status),
      ['UP', 'UP', 'UP'],
    );
    // Once every drain was found in place, a check for a reload is one `show info`.
    await traffic.detach('web-5');
    assert.deepEqual(await traffic.undrained(['web-5']), []);
    assert.equal(await commandsOf(() => traffic.undrained(['web-5'])), 1);
    await traffic.attach('web-5');
  });

  it('rolls 10% at a time under load: each server upgraded by one command, no request failed', async () => {
    const load = startLoad({ url: `${fleet.haproxy.frontendUrl}/`, ratePerSecond: 100 });
    await delay(500);
    const result = await runRollout(
      temporal(),
      realActivityDeps(),
      parseRolloutSpec(
        fleet.spec(
          {
            version: 'v2',
            strategy: { type: 'rolling', batchSize: '10%' },
            verify: { http: { passes: 2, interval: '200ms', timeout: '20s' } },
          },
          'farm-web',
        ),
      ),
    );
    const stats = await load.stop();
    assert.equal(result.phase, 'succeeded', result.reason);
    assert.equal(stats.failed, 0, JSON.stringify(stats.errors));
    assert.ok((stats.byVersion.v2 ?? 0) > 0, 'v2 served requests');
    assert.deepEqual(new Set(Object.values(await hostVersions(fleet.dir))), new Set(['v2']));
    const commands = (await upgradeCommands(fleet.dir)).filter((command) => command.version === 'v2');
    assert.equal(commands.length, servers);
    assert.equal(new Set(commands.map((command) => command.name)).size, servers);
  });
});
