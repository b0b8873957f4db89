import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { realActivityDeps } from '../../activities';
import { HaproxyTrafficProvider } from '../../activities/haproxy/traffic-provider';
import { countStarts, hostVersions } from '../../infra/fleet/hosts';
import { parseRolloutSpec } from '../../spec';
import { inRotation, useFleets } from '../helpers/fleet';
import { runRollout } from '../helpers/rollout';

const { temporal: testTemporal, fleet: startFleet } = useFleets();

describe('recreate on a real fleet behind real HAProxy', () => {
  it('stops every server, runs the pre-step, starts them all on the new version', async () => {
    const fleet = await startFleet({ servers: 3, version: 'v1' });
    const marker = join(fleet.dir, 'migrated');
    const result = await runRollout(
      testTemporal(),
      realActivityDeps(),
      parseRolloutSpec(
        fleet.spec(
          {
            version: 'v2',
            strategy: { type: 'recreate', preStep: { argv: ['/usr/bin/touch', `${marker}-{version}`] } },
          },
          'recreate-web',
        ),
      ),
    );
    assert.equal(result.phase, 'succeeded', result.reason);
    assert.ok(existsSync(`${marker}-v2`), 'the pre-step ran with the version');
    assert.deepEqual(Object.values(await hostVersions(fleet.dir)), ['v2', 'v2', 'v2']);
    const v2Starts = (await countStarts(fleet.dir)).filter((s) => s.version === 'v2');
    assert.equal(v2Starts.length, 3, 'each server started once on v2');
  });

  it('starts the old version again on every server when the pre-step fails', async () => {
    const fleet = await startFleet({ servers: 3, version: 'v1' });
    const result = await runRollout(
      testTemporal(),
      realActivityDeps(),
      parseRolloutSpec(
        fleet.spec(
          { version: 'v2', strategy: { type: 'recreate', preStep: { argv: ['/bin/false'] } } },
          'recreate-fail',
        ),
      ),
    );
    assert.equal(result.phase, 'rolled-back');
    assert.match(result.reason ?? '', /pre-step \/bin\/false/);
    assert.deepEqual(Object.values(await hostVersions(fleet.dir)), ['v1', 'v1', 'v1']);
    const traffic = new HaproxyTrafficProvider(fleet.haproxy.socket, 'web');
    for (const server of fleet.servers) assert.match((await traffic.traffic(server.name)).status, inRotation);
  });
});
