import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { realActivityDeps } from '../../activities';
import { HaproxyTrafficProvider } from '../../activities/haproxy/traffic-provider';
import { hostVersions } from '../../infra/fleet/hosts';
import { startLoad } from '../../infra/load';
import type { RolloutSpecInput } from '../../spec';
import { parseRolloutSpec } from '../../spec';
import type { RolloutStatus } from '../../workflows/messages';
import { abortUpdate, statusQuery } from '../../workflows/messages';
import { inRotation, useFleets } from '../helpers/fleet';
import { startRolloutInProcess, until } from '../helpers/rollout';

const { temporal: testTemporal, fleet: startFleet } = useFleets();

interface AbortCase {
  readonly name: string;
  /** The strategy, given the fleet's folder (for a pre-step that says where it is). */
  readonly strategy: RolloutSpecInput['strategy'] | ((fleetDir: string) => RolloutSpecInput['strategy']);
  readonly provisioned?: boolean;
  /** Requests may fail by design (recreate). */
  readonly dropsByDesign?: boolean;
  /** When the rollout is midway. */
  readonly midway: (status: RolloutStatus, fleetDir: string) => boolean;
}

const cases: AbortCase[] = [
  {
    name: 'canary, at its pause with one server on v2',
    strategy: { type: 'canary', steps: [{ setWeight: 34 }, { pause: {} }] },
    midway: (s) => s.phase === 'paused',
  },
  {
    name: 'rolling by replacement, at the approval after its first new server',
    strategy: { type: 'rolling', method: 'replace', batchSize: 1, pauses: [{ after: 1 }] },
    provisioned: true,
    midway: (s) => s.phase === 'paused',
  },
  {
    name: 'surge, once the new servers serve beside the old',
    strategy: { type: 'surge', batchSize: 1 },
    provisioned: true,
    midway: (s) => s.servers.some((server) => server.step === 'retired'),
  },
  {
    name: 'recreate, while its pre-step runs',
    // The pre-step marks that it started, then takes 5 s: the abort lands while it runs. (No braces: an argv
    // template reads them as placeholders.)
    strategy: (dir) => ({
      type: 'recreate',
      preStep: {
        argv: [
          process.execPath,
          '-e',
          `require('node:fs').writeFileSync(${JSON.stringify(join(dir, 'pre-step-started'))}, ''); setTimeout(Date.now, 5000)`,
        ],
      },
    }),
    dropsByDesign: true,
    midway: (_status, dir) => existsSync(join(dir, 'pre-step-started')),
  },
];

describe('an abort midway restores the old version completely, on a real fleet under load', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const fleet = await startFleet({ servers: 3, version: 'v1', defaults: { latencyMs: 5 } });
      const strategy = typeof c.strategy === 'function' ? c.strategy(fleet.dir) : c.strategy;
      const name = `abort-${strategy?.type ?? 'rolling'}-${Date.now() % 100_000}`;
      const input = fleet.spec({ version: 'v2', strategy }, name);
      const spec = parseRolloutSpec(
        c.provisioned ? { ...input, target: fleet.provisionedTarget(name) } : input,
      );
      const load = startLoad({ url: `${fleet.haproxy.frontendUrl}/`, ratePerSecond: 100 });
      const { handle, stop } = await startRolloutInProcess(testTemporal(), realActivityDeps(), spec);
      try {
        await until(async () => c.midway(await handle.query(statusQuery), fleet.dir));
        await handle.executeUpdate(abortUpdate, { args: [{ by: 'hank', reason: 'midway' }] });
        const result = await handle.result();
        const stats = await load.stop();
        assert.equal(result.phase, 'rolled-back', result.reason);
        assert.match(result.reason ?? '', /aborted by hank: midway/);
        assert.deepEqual(await hostVersions(fleet.dir), { 'web-1': 'v1', 'web-2': 'v1', 'web-3': 'v1' });
        const traffic = new HaproxyTrafficProvider(fleet.haproxy.socket, 'web');
        assert.deepEqual(await traffic.listServers(), ['web-1', 'web-2', 'web-3']);
        const counters = await traffic.counters();
        for (const server of ['web-1', 'web-2', 'web-3']) {
          assert.match((await traffic.traffic(server)).status, inRotation, `${server} serves`);
          assert.equal(counters[server]?.weight, 1, `${server} has its weight back`);
        }
        if (!c.dropsByDesign)
          assert.equal(stats.failed, 0, `failed requests: ${JSON.stringify(stats.errors)}`);
      } finally {
        await load.stop();
        await stop();
      }
    });
  }
});
