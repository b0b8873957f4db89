import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { realActivityDeps } from '../../activities';
import { HaproxyTrafficProvider } from '../../activities/haproxy/traffic-provider';
import { countStarts, hostVersions, readFleetFile } from '../../infra/fleet/hosts';
import { startLoad } from '../../infra/load';
import type { RolloutSpecInput } from '../../spec';
import { parseRolloutSpec } from '../../spec';
import { abortUpdate, promoteUpdate, statusQuery } from '../../workflows/messages';
import type { LocalFleet } from '../../infra/fleet/local-fleet';
import { useFleets } from '../helpers/fleet';
import { startRolloutInProcess, until } from '../helpers/rollout';

const { temporal: testTemporal, fleet: startFleet } = useFleets();

/** What HAProxy's backend holds: each server's name and state. */
async function backend(fleet: LocalFleet): Promise<Record<string, string>> {
  const traffic = new HaproxyTrafficProvider(fleet.haproxy.socket, 'web');
  const entries = await Promise.all(
    (await traffic.listServers()).map(async (name) => [name, (await traffic.traffic(name)).status] as const),
  );
  return Object.fromEntries(entries);
}

async function start(
  fleet: LocalFleet,
  name: string,
  version: string,
  strategy: RolloutSpecInput['strategy'],
) {
  return startRolloutInProcess(
    testTemporal(),
    realActivityDeps(),
    parseRolloutSpec({ ...fleet.spec({ version, strategy }), target: fleet.provisionedTarget(name) }),
  );
}

describe('strategies that replace servers, on a real fleet behind real HAProxy, under load', () => {
  it('surge: doubles the fleet on v2, then retires and destroys the old half, dropping no request', async () => {
    const fleet = await startFleet({ servers: 3, version: 'v1', defaults: { latencyMs: 5 } });
    const load = startLoad({ url: `${fleet.haproxy.frontendUrl}/`, ratePerSecond: 150 });
    const { handle, stop } = await start(fleet, 'surge-web', 'v2', { type: 'surge' });
    try {
      const result = await handle.result();
      const stats = await load.stop();
      assert.equal(result.phase, 'succeeded', result.reason);
      assert.equal(stats.failed, 0, `failed requests: ${JSON.stringify(stats.errors)}`);
      assert.deepEqual(await backend(fleet), { 'web-4': 'UP', 'web-5': 'UP', 'web-6': 'UP' });
      assert.deepEqual(await hostVersions(fleet.dir), { 'web-4': 'v2', 'web-5': 'v2', 'web-6': 'v2' });
      assert.deepEqual(
        (await readFleetFile(fleet.dir)).servers.map((s) => s.name).sort(),
        ['web-4', 'web-5', 'web-6'],
        'the old servers are destroyed',
      );
      const starts = await countStarts(fleet.dir);
      assert.equal(starts.filter((s) => s.version === 'v2').length, 3, 'each new server started once');
    } finally {
      await load.stop();
      await stop();
    }
  });

  it('rolling by replacement: one new server at a time, then the oldest leaves; a second rollout reads the new fleet', async () => {
    const fleet = await startFleet({ servers: 3, version: 'v1', defaults: { latencyMs: 5 } });
    const load = startLoad({ url: `${fleet.haproxy.frontendUrl}/`, ratePerSecond: 150 });
    try {
      const first = await start(fleet, 'replace-web', 'v2', {
        type: 'rolling',
        method: 'replace',
        batchSize: 1,
      });
      const result = await first.handle.result().finally(() => void first.stop());
      assert.equal(result.phase, 'succeeded', result.reason);
      assert.deepEqual(Object.keys(await backend(fleet)), ['web-4', 'web-5', 'web-6']);
      // The next rollout finds web-4..6 in the backend without anyone editing the spec.
      const second = await start(fleet, 'replace-web', 'v3', { type: 'surge', batchSize: '50%' });
      const again = await second.handle.result().finally(() => void second.stop());
      assert.equal(again.phase, 'succeeded', again.reason);
      assert.deepEqual(await hostVersions(fleet.dir), { 'web-7': 'v3', 'web-8': 'v3', 'web-9': 'v3' });
      const stats = await load.stop();
      assert.equal(stats.failed, 0, `failed requests: ${JSON.stringify(stats.errors)}`);
    } finally {
      await load.stop();
    }
  });

  it('blue/green: the new set serves nothing until promote, then everything at once; the old set is destroyed after the delay', async () => {
    const fleet = await startFleet({ servers: 2, version: 'v1', defaults: { latencyMs: 5 } });
    const load = startLoad({ url: `${fleet.haproxy.frontendUrl}/`, ratePerSecond: 150 });
    const { handle, stop } = await start(fleet, 'bg-web', 'v2', {
      type: 'blue-green',
      autoPromote: false,
      scaleDownDelay: '2s',
    });
    try {
      await until(async () => (await handle.query(statusQuery)).phase === 'paused');
      // At the gate: the green set is in the backend, healthy, taking no request; blue serves everything.
      assert.deepEqual(await backend(fleet), {
        'web-1': 'UP',
        'web-2': 'UP',
        'web-3': 'DRAIN',
        'web-4': 'DRAIN',
      });
      const sentBefore = (await new HaproxyTrafficProvider(fleet.haproxy.socket, 'web').counters())['web-3'];
      await handle.executeUpdate(promoteUpdate, { args: [{ by: 'hank' }] });
      await until(async () => (await backend(fleet))['web-1'] === 'DRAIN');
      assert.equal(sentBefore?.responses, 0, 'green took no request before the switch');
      const result = await handle.result();
      const stats = await load.stop();
      assert.equal(result.phase, 'succeeded', result.reason);
      assert.equal(stats.failed, 0, `failed requests: ${JSON.stringify(stats.errors)}`);
      assert.deepEqual(await backend(fleet), { 'web-3': 'UP', 'web-4': 'UP' });
      assert.deepEqual(await hostVersions(fleet.dir), { 'web-3': 'v2', 'web-4': 'v2' });
    } finally {
      await load.stop();
      await stop();
    }
  });

  it('blue/green: an abort during the scale-down delay switches back at once and destroys the new set', async () => {
    const fleet = await startFleet({ servers: 2, version: 'v1', defaults: { latencyMs: 5 } });
    const load = startLoad({ url: `${fleet.haproxy.frontendUrl}/`, ratePerSecond: 150 });
    const { handle, stop } = await start(fleet, 'bg-abort', 'v2', {
      type: 'blue-green',
      scaleDownDelay: '1m',
    });
    try {
      await until(async () => (await backend(fleet))['web-1'] === 'DRAIN');
      await handle.executeUpdate(abortUpdate, { args: [{ by: 'hank', reason: 'errors in v2' }] });
      const result = await handle.result();
      const stats = await load.stop();
      assert.equal(result.phase, 'rolled-back');
      assert.equal(stats.failed, 0, `failed requests: ${JSON.stringify(stats.errors)}`);
      assert.deepEqual(await backend(fleet), { 'web-1': 'UP', 'web-2': 'UP' });
      assert.deepEqual(await hostVersions(fleet.dir), { 'web-1': 'v1', 'web-2': 'v1' });
    } finally {
      await load.stop();
      await stop();
    }
  });

  it('surge: a new version that fails verification is destroyed and the old servers never left', async () => {
    const fleet = await startFleet({
      servers: 2,
      version: 'v1',
      versions: { 'v2-broken': { healthStatus: 500 } },
    });
    const { handle, stop } = await start(fleet, 'surge-broken', 'v2-broken', { type: 'surge' });
    try {
      const result = await handle.result();
      assert.equal(result.phase, 'rolled-back');
      assert.match(result.reason ?? '', /creating servers failed/);
      assert.deepEqual(await backend(fleet), { 'web-1': 'UP', 'web-2': 'UP' });
      assert.deepEqual(await hostVersions(fleet.dir), { 'web-1': 'v1', 'web-2': 'v1' });
    } finally {
      await stop();
    }
  });
});
