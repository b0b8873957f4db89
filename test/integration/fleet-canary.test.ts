import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { realActivityDeps } from '../../activities';
import { HaproxyTrafficProvider } from '../../activities/haproxy/traffic-provider';
import { countStarts, hostVersions } from '../../infra/fleet/hosts';
import { startLoad } from '../../infra/load';
import { parseRolloutSpec } from '../../spec';
import { statusQuery } from '../../workflows/messages';
import type { LocalFleet } from '../../infra/fleet/local-fleet';
import { useFleets } from '../helpers/fleet';
import { startRolloutInProcess } from '../helpers/rollout';

const { temporal: testTemporal, fleet: startFleet } = useFleets();

const weights = async (fleet: LocalFleet) => {
  const counters = await new HaproxyTrafficProvider(fleet.haproxy.socket, 'web').counters();
  return fleet.servers.map((s) => counters[s.name]?.weight);
};

describe('canary on a real fleet behind real HAProxy, under load', () => {
  it('sends the canary its share of real requests, analyses it, promotes, and drops no request', async () => {
    const fleet = await startFleet({ servers: 5, version: 'v1', defaults: { latencyMs: 5 } });
    const load = startLoad({ url: `${fleet.haproxy.frontendUrl}/`, ratePerSecond: 100 });
    const { handle, stop } = await startRolloutInProcess(
      testTemporal(),
      realActivityDeps(),
      parseRolloutSpec(
        fleet.spec(
          {
            version: 'v2',
            strategy: {
              type: 'canary',
              steps: [{ setWeight: 20 }, { analysis: { window: '3s', minRequests: 20 } }],
              batchSize: 2,
            },
          },
          'canary-good',
        ),
      ),
    );
    try {
      const result = await handle.result();
      const stats = await load.stop();
      assert.equal(result.phase, 'succeeded', result.reason);
      assert.equal(stats.failed, 0, `failed requests: ${JSON.stringify(stats.errors)}`);
      assert.deepEqual(Object.values(await hostVersions(fleet.dir)), ['v2', 'v2', 'v2', 'v2', 'v2']);
      assert.equal((await countStarts(fleet.dir)).filter((s) => s.version === 'v2').length, 5);
      const analysis = (await handle.query(statusQuery)).canary?.analyses[0];
      assert.equal(analysis?.passed, true, JSON.stringify(analysis));
      // 20% of ~300 requests in 3 s, give or take the load's own pace.
      assert.ok((analysis?.canary?.requests ?? 0) >= 30, `canary served ${analysis?.canary?.requests}`);
      assert.ok((analysis?.stable?.requests ?? 0) >= 4 * 30, `stable served ${analysis?.stable?.requests}`);
      assert.deepEqual(await weights(fleet), [1, 1, 1, 1, 1], 'weights given back');
    } finally {
      await load.stop();
      await stop();
    }
  });

  it('catches a canary that answers 5xx to a share of requests, and rolls back without anyone', async () => {
    const fleet = await startFleet({
      servers: 4,
      version: 'v1',
      versions: { 'v2-flaky': { errorRate: 0.3 } },
    });
    const load = startLoad({ url: `${fleet.haproxy.frontendUrl}/`, ratePerSecond: 100 });
    const { handle, stop } = await startRolloutInProcess(
      testTemporal(),
      realActivityDeps(),
      parseRolloutSpec(
        fleet.spec(
          {
            version: 'v2-flaky',
            strategy: {
              type: 'canary',
              steps: [{ setWeight: 25 }, { analysis: { window: '3s' } }, { setWeight: 100 }],
            },
          },
          'canary-flaky',
        ),
      ),
    );
    try {
      const result = await handle.result();
      const stats = await load.stop();
      assert.equal(result.phase, 'rolled-back');
      assert.match(
        result.reason ?? '',
        /analysis at step 2 failed: the canary's 5xx rate \d+(\.\d+)?% is above 5%/,
      );
      assert.deepEqual(Object.values(await hostVersions(fleet.dir)), ['v1', 'v1', 'v1', 'v1']);
      assert.deepEqual(await weights(fleet), [1, 1, 1, 1]);
      const flakyStarts = (await countStarts(fleet.dir)).filter((s) => s.version === 'v2-flaky');
      assert.equal(flakyStarts.length, 1, 'only the canary server ever ran the new version');
      // The only failed requests are the canary's own 5xx answers, and only while it had its share.
      assert.ok(
        stats.failed > 0 && stats.failed < stats.sent * 0.15,
        `${stats.failed} of ${stats.sent} failed`,
      );
    } finally {
      await load.stop();
      await stop();
    }
  });
});
