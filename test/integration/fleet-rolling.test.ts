import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { realActivityDeps } from '../../activities';
import { HaproxyTrafficProvider } from '../../activities/haproxy/traffic-provider';
import { countStarts, hostVersions } from '../../infra/fleet/hosts';
import type { LocalFleet } from '../../infra/fleet/local-fleet';
import { startLoad } from '../../infra/load';
import { parseRolloutSpec } from '../../spec';
import { inRotation, startTestFleet } from '../helpers/fleet';
import { runRollout } from '../helpers/rollout';
import type { TestTemporal } from '../helpers/temporal';
import { connectTestTemporal } from '../helpers/temporal';
import { delay } from '../../infra/processes';

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

const onlyV = (versions: Record<string, string | undefined>, version: string) =>
  Object.values(versions).every((v) => v === version);

describe('rolling rollout of a real fleet behind real HAProxy', () => {
  it('upgrades every server under load and fails no request', async () => {
    // Given five servers on v1 that take long enough to boot for HAProxy's checks to mark them DOWN meanwhile,
    // and steady traffic through HAProxy
    const fleet = await fleetOf({ servers: 5, version: 'v1', defaults: { latencyMs: 10, startupMs: 2_500 } });
    const load = startLoad({ url: `${fleet.haproxy.frontendUrl}/`, ratePerSecond: 150 });
    // When Baton rolls them to v2 two at a time
    const result = await runRollout(
      temporal,
      realActivityDeps(),
      parseRolloutSpec(fleet.spec({ version: 'v2' })),
    );
    const stats = await load.stop();
    // Then every server runs v2, each was started on v2 exactly once, and no request failed
    assert.equal(result.phase, 'succeeded');
    assert.ok(onlyV(await hostVersions(fleet.dir), 'v2'), JSON.stringify(await hostVersions(fleet.dir)));
    const v2Starts = (await countStarts(fleet.dir)).filter((s) => s.version === 'v2');
    assert.deepEqual(v2Starts.map((s) => s.name).sort(), fleet.servers.map((s) => s.name).sort());
    assert.ok(stats.sent > 300, `sent ${stats.sent}`);
    assert.equal(stats.failed, 0, `failed requests: ${JSON.stringify(stats.errors)}`);
    assert.ok(
      (stats.byVersion.v1 ?? 0) > 0 && (stats.byVersion.v2 ?? 0) > 0,
      'both versions served during the rollout',
    );
  });

  it('lets a 2 s request that started just before detach finish with 200 before upgrading', async () => {
    // Given one server, and a slow request in flight on it
    const fleet = await fleetOf({ servers: 1, version: 'v1' });
    const requestStarted = Date.now();
    const slow = fetch(`${fleet.haproxy.frontendUrl}/?delay=2000`).then(async (r) => ({
      status: r.status,
      version: r.headers.get('x-app-version'),
      endedAt: Date.now(),
      body: await r.text(),
    }));
    await delay(200);
    // When Baton upgrades that server
    const rollout = runRollout(
      temporal,
      realActivityDeps(),
      parseRolloutSpec(fleet.spec({ version: 'v2', strategy: { type: 'rolling', batchSize: 1 } })),
    );
    const [response, result] = await Promise.all([slow, rollout]);
    // Then the request completed on v1, and v2 started only after it had ended
    assert.equal(response.status, 200);
    assert.equal(response.version, 'v1');
    assert.equal(result.phase, 'succeeded');
    const v2Start = (await countStarts(fleet.dir)).find((s) => s.version === 'v2') as
      | { time?: string }
      | undefined;
    assert.ok(v2Start?.time, 'v2 started');
    assert.ok(Date.parse(v2Start.time) >= response.endedAt - 50, 'v2 started after the slow request ended');
    assert.ok(response.endedAt - requestStarted >= 2_000);
  });

  it('rolls a v2 that fails verification back to v1 on every server, failing no request', async () => {
    // Given a v2 whose health check answers 500
    const fleet = await fleetOf({
      servers: 4,
      version: 'v1',
      versions: { v2: { healthStatus: 500 } },
      defaults: { latencyMs: 5 },
    });
    const load = startLoad({ url: `${fleet.haproxy.frontendUrl}/`, ratePerSecond: 100 });
    // When Baton rolls it out
    const result = await runRollout(
      temporal,
      realActivityDeps(),
      parseRolloutSpec(
        fleet.spec({ version: 'v2', verify: { http: { passes: 2, interval: '100ms', timeout: '2s' } } }),
      ),
    );
    const stats = await load.stop();
    // Then it rolled back on its own, every server is on v1, and no request failed
    assert.equal(result.phase, 'rolled-back');
    assert.match(result.reason ?? '', /failed verification for v2.*answered 500/s);
    assert.ok(onlyV(await hostVersions(fleet.dir), 'v1'), JSON.stringify(await hostVersions(fleet.dir)));
    assert.equal(stats.failed, 0, `failed requests: ${JSON.stringify(stats.errors)}`);
    const traffic = new HaproxyTrafficProvider(fleet.haproxy.socket, 'web');
    for (const server of fleet.servers) {
      const state = await traffic.traffic(server.name);
      assert.match(state.status, inRotation, `${server.name} is back in rotation`);
    }
  });

  it('rejects an inventory with a server HAProxy does not know before changing anything', async () => {
    const fleet = await fleetOf({ servers: 2, version: 'v1' });
    const input = fleet.spec({ version: 'v2' }, 'unknown-server');
    const target = input.target as { servers: Array<{ name: string; address: string }> };
    target.servers.push({ name: 'web-9', address: '127.0.0.1:1' });
    await assert.rejects(
      runRollout(temporal, realActivityDeps(), parseRolloutSpec(input)),
      (error: unknown) => {
        assert.ok(error instanceof WorkflowFailedError);
        assert.match(String(error.cause?.message), /rejected before any change: .*no server named web-9/s);
        return true;
      },
    );
    assert.equal((await countStarts(fleet.dir)).length, 2, 'no server was restarted');
    const traffic = new HaproxyTrafficProvider(fleet.haproxy.socket, 'web');
    for (const server of fleet.servers) assert.match((await traffic.traffic(server.name)).status, inRotation);
  });

  it('rejects an unreachable HAProxy socket before changing anything', async () => {
    const fleet = await fleetOf({ servers: 1, version: 'v1' });
    const input = fleet.spec({ version: 'v2' }, 'no-socket');
    (input.target as { loadBalancer: { haproxy: { socket: string } } }).loadBalancer.haproxy.socket =
      '/nonexistent/admin.sock';
    await assert.rejects(
      runRollout(temporal, realActivityDeps(), parseRolloutSpec(input)),
      (error: unknown) => {
        assert.ok(error instanceof WorkflowFailedError);
        assert.match(
          String(error.cause?.message),
          /rejected before any change: .*admin.sock is unreachable: ENOENT/s,
        );
        return true;
      },
    );
    assert.equal((await countStarts(fleet.dir)).length, 1);
  });
});
