import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { realActivityDeps } from '../../activities';
import { hostVersions } from '../../infra/fleet/hosts';
import type { LocalFleet } from '../../infra/fleet/local-fleet';
import { startLoad } from '../../infra/load';
import { parseRolloutSpec } from '../../spec';
import { exampleFiles, localExample, promoteUntilDone } from '../helpers/examples';
import { startTestFleet } from '../helpers/fleet';
import { startRolloutInProcess } from '../helpers/rollout';
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

describe('examples/ on a real fleet behind real HAProxy', () => {
  for (const file of exampleFiles('fleet')) {
    it(`${file}: rolls a local fleet of 4 to the example's version under load`, async () => {
      const fleet = await startTestFleet({ servers: 4, version: 'v1', defaults: { latencyMs: 5 } });
      fleets.push(fleet);
      const name = `example-${file.split('.')[0]}`;
      const input = localExample(file, (written) =>
        written.kind === 'fleet' && written.provision
          ? fleet.provisionedTarget(name)
          : fleet.spec({ version: 'v2' }, name).target,
      );
      const spec = parseRolloutSpec(input, file);
      const load = startLoad({ url: `${fleet.haproxy.frontendUrl}/`, ratePerSecond: 150 });
      const { handle, stop } = await startRolloutInProcess(temporal, realActivityDeps(), spec);
      try {
        const result = await promoteUntilDone(handle);
        const stats = await load.stop();
        assert.equal(result.phase, 'succeeded', result.reason);
        assert.deepEqual(
          Object.values(await hostVersions(fleet.dir)),
          Array(4).fill(spec.version),
          'four servers, all on the version',
        );
        if (spec.strategy.type !== 'recreate')
          assert.equal(stats.failed, 0, `failed requests: ${JSON.stringify(stats.errors)}`);
      } finally {
        await load.stop();
        await stop();
      }
    });
  }
});
