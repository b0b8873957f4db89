import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { realActivityDeps } from '../../activities';
import { hostVersions } from '../../infra/fleet/hosts';
import { startLoad } from '../../infra/load';
import { parseRolloutSpec } from '../../spec';
import { exampleFiles, localExample, promoteUntilDone } from '../helpers/examples';
import { useFleets } from '../helpers/fleet';
import { startRolloutInProcess } from '../helpers/rollout';

const { temporal: testTemporal, fleet: startFleet } = useFleets();

describe('examples/ on a real fleet behind real HAProxy', () => {
  for (const file of exampleFiles('fleet')) {
    it(`${file}: rolls a local fleet of 4 to the example's version under load`, async () => {
      const fleet = await startFleet({ servers: 4, version: 'v1', defaults: { latencyMs: 5 } });
      const name = `example-${file.split('.')[0]}`;
      const input = localExample(file, (written) =>
        written.kind === 'fleet' && written.provision
          ? fleet.provisionedTarget(name)
          : fleet.spec({ version: 'v2' }, name).target,
      );
      const spec = parseRolloutSpec(input, file);
      const load = startLoad({ url: `${fleet.haproxy.frontendUrl}/`, ratePerSecond: 150 });
      const { handle, stop } = await startRolloutInProcess(testTemporal(), realActivityDeps(), spec);
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
