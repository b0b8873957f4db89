import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { realActivityDeps } from '../../activities';
import { HaproxyTrafficProvider } from '../../activities/haproxy/traffic-provider';
import { countStarts, hostVersions } from '../../infra/fleet/hosts';
import { parseRolloutSpec } from '../../spec';
import { inRotation, useFleets } from '../helpers/fleet';
import { runRollout } from '../helpers/rollout';

const { temporal: testTemporal, fleet: startFleet } = useFleets();

/** A pre-step that records HAProxy's server states and each server's version (or "down") into a file. */
const preStepWitness = `
const { createConnection } = require('node:net');
const { writeFileSync } = require('node:fs');
const [socket, out, ...urls] = process.argv.slice(2);
let state = '';
const admin = createConnection(socket);
admin.on('connect', () => admin.end('show servers state web\\n'));
admin.on('data', (chunk) => (state += chunk));
admin.on('end', async () => {
  const versions = await Promise.all(
    urls.map((url) => fetch(url).then((r) => r.json()).then((b) => b.version, () => 'down')),
  );
  writeFileSync(out, JSON.stringify({ state, versions }));
});
`;

describe('recreate on a real fleet behind real HAProxy', () => {
  it('stops every server, runs the pre-step, starts them all on the new version', async () => {
    const fleet = await startFleet({ servers: 3, version: 'v1' });
    // The pre-step writes down what HAProxy and each server say at the moment it runs.
    const witness = join(fleet.dir, 'pre-step-saw.json');
    const script = join(fleet.dir, 'pre-step.js');
    await writeFile(script, preStepWitness);
    const result = await runRollout(
      testTemporal(),
      realActivityDeps(),
      parseRolloutSpec(
        fleet.spec(
          {
            version: 'v2',
            strategy: {
              type: 'recreate',
              preStep: {
                argv: [
                  process.execPath,
                  script,
                  fleet.haproxy.socket,
                  `${witness}-{version}`,
                  ...fleet.servers.map((s) => `http://${s.address}/healthz`),
                ],
              },
            },
          },
          'recreate-web',
        ),
      ),
    );
    assert.equal(result.phase, 'succeeded', result.reason);
    assert.ok(existsSync(`${witness}-v2`), 'the pre-step ran with the version');
    const saw = JSON.parse(await readFile(`${witness}-v2`, 'utf8')) as { state: string; versions: string[] };
    // Stopped first: at the pre-step, every server is out of rotation (admin state drain, bit 0x8)...
    const rows = saw.state
      .split('\n')
      .slice(2)
      .filter((line) => line.trim() !== '')
      .map((line) => line.split(' '));
    assert.equal(rows.length, 3, saw.state);
    for (const cells of rows)
      assert.ok(
        (Number(cells[6]) & 0x8) !== 0,
        `${cells[3]} was out of rotation at the pre-step: ${cells.join(' ')}`,
      );
    // ...and none runs the new version yet: they start on it only after the pre-step.
    assert.deepEqual(saw.versions, ['v1', 'v1', 'v1'], 'no server on v2 before the pre-step');
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
