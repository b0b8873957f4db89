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
import type { ServerStatus } from '../../workflows/messages';
import { promoteUpdate, statusQuery } from '../../workflows/messages';
import { serverCheckOptions } from '../../infra/haproxy';
import { inRotation, startTestFleet } from '../helpers/fleet';
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

  it('puts back, in one comparison, the drains, weights, added servers and removals a reload forgot', async () => {
    const fleet = await fleetOf({ servers: 3, version: 'v1' });
    const traffic = new HaproxyTrafficProvider(fleet.haproxy.socket, 'web');
    // web-9 is web-1's process under a second name: HAProxy does not mind, and it answers health checks.
    const address = fleet.servers[0]?.address ?? '';
    const state = {
      added: [{ name: 'web-9', address }],
      addOptions: [...serverCheckOptions],
      drained: ['web-2'],
      serving: ['web-9'],
      removed: ['web-3'],
      weights: { 'web-1': 7 },
    };
    await traffic.addServer('web-9', address, serverCheckOptions);
    await traffic.switchTraffic(['web-9'], ['web-2']);
    await traffic.setWeight('web-1', 7);
    await traffic.removeServer('web-3');
    const held = await traffic.restore(state);
    assert.deepEqual(held.restored, [], 'nothing to put back before a reload');

    await fleet.haproxy.reload();
    assert.deepEqual((await traffic.listServers()).sort(), ['web-1', 'web-2', 'web-3'], 'the reload forgot');
    const restored = await traffic.restore(state);
    assert.notEqual(restored.process, held.process);
    assert.deepEqual(restored.restored.sort(), [
      'web-1 weight 7 again',
      'web-2 out of rotation again',
      'web-3 removed again',
      'web-9 added again',
    ]);
    assert.deepEqual((await traffic.listServers()).sort(), ['web-1', 'web-2', 'web-9']);
    const now = await traffic.trafficOf(['web-1', 'web-2', 'web-9']);
    assert.equal(now['web-1']?.weight, 7);
    assert.match(now['web-2']?.status ?? '', /^DRAIN/);
    assert.doesNotMatch(now['web-9']?.status ?? '', /^(DRAIN|MAINT)/);
    assert.deepEqual((await traffic.restore(state)).restored, [], 'restoring twice changes nothing');
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
    let reads = 0;
    while (!finished) {
      // A fresh `show stat` each time: what HAProxy does with web-2 now, not what a provider remembers.
      const status = (await traffic.traffic('web-2')).status;
      reads++;
      const out = !inRotation.test(status);
      if (out && backOutAfterMs === undefined) backOutAfterMs = Date.now() - reloadedAt;
      // Once back out, it stays out until the upgrade is over.
      if (backOutAfterMs !== undefined) assert.ok(out, `web-2 stayed out of rotation, not ${status}`);
      await delay(20);
    }
    assert.ok(reads > 50, `web-2 was read through the upgrade: ${reads} reads`);
    await upgrading;
    assert.ok(backOutAfterMs !== undefined && backOutAfterMs < 1_000, `back out after ${backOutAfterMs} ms`);
    assert.doesNotMatch((await traffic.traffic('web-2')).status, inRotation);
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

  it('a canary analysed while HAProxy reloads: its weights are back before the window ends, and a whole window is judged', async () => {
    const fleet = await fleetOf({ servers: 4, version: 'v1', defaults: { latencyMs: 5 } });
    const load = startLoad({ url: `${fleet.haproxy.frontendUrl}/`, ratePerSecond: 100 });
    const spec = fleet.spec(
      {
        version: 'v2',
        strategy: {
          type: 'canary',
          steps: [{ setWeight: 10 }, { analysis: { window: '6s', minRequests: 10 } }],
          batchSize: 2,
        },
      },
      'reload-canary',
    );
    const { handle, stop } = await startRolloutInProcess(
      temporal,
      realActivityDeps(),
      parseRolloutSpec(spec),
    );
    const traffic = new HaproxyTrafficProvider(fleet.haproxy.socket, 'web');
    const weights = async () => {
      const counters = await traffic.counters();
      return fleet.servers.map((server) => counters[server.name]?.weight);
    };
    try {
      // When the canary has its share and its analysis window has begun
      await until(
        async () => ((await handle.query(statusQuery).catch(() => undefined))?.canary?.weight ?? 0) > 0,
      );
      await delay(1_000);
      const share = await weights();
      assert.notDeepEqual(share, [1, 1, 1, 1], 'the canary has weights of its own');
      // Then a reload sets every weight back to the configuration's, and Baton puts the canary's back
      const reloading = fleet.haproxy.reload();
      const reloadedAt = Date.now();
      // The new process starts with every weight at 1 (the first test shows a reload forgets what was set)
      const reloadedPid = String(fleet.haproxy.pid);
      await until(async () => (await traffic.process()) === reloadedPid, 5_000);
      await until(async () => JSON.stringify(await weights()) === JSON.stringify(share), 5_000);
      const backAfterMs = Date.now() - reloadedAt;
      const during = await handle.query(statusQuery);
      assert.equal(during.canary?.analyses.length, 0, 'put back while the analysis was still watching');
      assert.ok(backAfterMs < 3_000, `weights back after ${backAfterMs} ms`);
      await reloading;
      const result = await handle.result();
      await delay(300);
      const stats = await load.stop();
      // And the window judged was one HAProxy counted whole, with the canary at its share
      assert.equal(result.phase, 'succeeded', result.reason);
      const analysis = (await handle.query(statusQuery)).canary?.analyses[0];
      assert.equal(analysis?.passed, true, JSON.stringify(analysis));
      assert.match(analysis?.summary ?? '', /reloaded during the window: judged on window 2/);
      assert.equal(stats.failed, 0, `failed requests: ${JSON.stringify(stats.errors)}`);
      assert.deepEqual(await weights(), [1, 1, 1, 1], 'weights given back at promotion');
      const commands = (await upgradeCommands(fleet.dir)).filter((c) => c.version === 'v2');
      assert.deepEqual(commands.map((c) => c.name).sort(), ['web-1', 'web-2', 'web-3', 'web-4']);
    } finally {
      await load.stop().catch(() => undefined);
      await stop();
    }
  });

  it('blue/green: servers Baton added survive a reload at the approval gate, and again after the switch', async () => {
    const fleet = await fleetOf({ servers: 3, version: 'v1', defaults: { latencyMs: 5 } });
    const load = startLoad({ url: `${fleet.haproxy.frontendUrl}/`, ratePerSecond: 100 });
    const spec = parseRolloutSpec({
      ...fleet.spec({
        version: 'v2',
        strategy: { type: 'blue-green', autoPromote: false, scaleDownDelay: '8s' },
      }),
      target: fleet.provisionedTarget('reload-blue-green'),
    });
    const { handle, stop } = await startRolloutInProcess(temporal, realActivityDeps(), spec);
    const traffic = new HaproxyTrafficProvider(fleet.haproxy.socket, 'web');
    const backend = async () => {
      const names = (await traffic.listServers()).sort();
      const readings = await traffic.trafficOf(names);
      return Object.fromEntries(names.map((name) => [name, readings[name]?.status.split(' ')[0]]));
    };
    const steps = async () =>
      Object.fromEntries(
        ((await handle.query(statusQuery).catch(() => undefined))?.servers ?? []).map((s: ServerStatus) => [
          s.name,
          s.step,
        ]),
      );
    try {
      // When the new set is up, taking no request, and the rollout waits for approval, HAProxy is reloaded
      await until(async () => (await handle.query(statusQuery)).phase === 'paused');
      const green = { 'web-4': 'DRAIN', 'web-5': 'DRAIN', 'web-6': 'DRAIN' };
      assert.deepEqual(await backend(), { 'web-1': 'UP', 'web-2': 'UP', 'web-3': 'UP', ...green });
      let reloadedAt = Date.now();
      await fleet.haproxy.reload();
      // Then the new set is back in the backend, still taking no request, while the rollout still waits
      await until(async () => JSON.stringify(await backend()).includes('"web-6":"DRAIN"'), 5_000);
      assert.ok(Date.now() - reloadedAt < 6_000, `back after ${Date.now() - reloadedAt} ms`);
      assert.deepEqual(await backend(), { 'web-1': 'UP', 'web-2': 'UP', 'web-3': 'UP', ...green });
      assert.equal((await handle.query(statusQuery)).phase, 'paused');

      // When traffic has switched to the new set and the old one waits to be scaled down, HAProxy is reloaded
      await handle.executeUpdate(promoteUpdate, { args: [{ by: 'hank' }] });
      await until(async () => {
        const now = await steps();
        return now['web-6'] === 'done' && now['web-1'] === 'retired';
      });
      reloadedAt = Date.now();
      await fleet.haproxy.reload();
      // Then the new set takes the requests again and the old one none, before the delay is over
      const switched = {
        'web-1': 'DRAIN',
        'web-2': 'DRAIN',
        'web-3': 'DRAIN',
        'web-4': 'UP',
        'web-5': 'UP',
        'web-6': 'UP',
      };
      await until(async () => JSON.stringify(await backend()) === JSON.stringify(switched), 5_000).catch(
        () => undefined,
      );
      assert.deepEqual(await backend(), switched);
      assert.ok(Date.now() - reloadedAt < 6_000, `switched back after ${Date.now() - reloadedAt} ms`);
      assert.equal((await steps())['web-1'], 'retired', 'the old set was still waiting out its delay');

      const result = await handle.result();
      await delay(300);
      const stats = await load.stop();
      // And the rollout finished on the new set, each new server started once, and no request failed
      assert.equal(result.phase, 'succeeded', result.reason);
      assert.deepEqual(await backend(), { 'web-4': 'UP', 'web-5': 'UP', 'web-6': 'UP' });
      assert.deepEqual(await hostVersions(fleet.dir), { 'web-4': 'v2', 'web-5': 'v2', 'web-6': 'v2' });
      const starts = (await countStarts(fleet.dir)).filter((s) => s.version === 'v2');
      assert.deepEqual(starts.map((s) => s.name).sort(), ['web-4', 'web-5', 'web-6']);
      assert.ok(stats.sent > 500, `sent ${stats.sent}`);
      assert.equal(stats.failed, 0, `failed requests: ${JSON.stringify(stats.errors)}`);
    } finally {
      await load.stop().catch(() => undefined);
      await stop();
    }
  });
});
