import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hostVersions, stopHost } from '../../infra/fleet/hosts';
import { startLocalFleet, sweepFleets } from '../../infra/fleet/local-fleet';
import { runsWith, signalReaches } from '../../infra/processes';

// Its own folder rather than the test runner's fleets folder: these tests sweep it, and nothing else may be in it.
let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'baton-local-fleet-'));
});
after(() => rm(root, { recursive: true, force: true }));

/** A process that is none of the fleet's, standing in for one the kernel gave a recorded pid to. */
function bystander() {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  return { pid: child.pid ?? -1, end: () => child.kill('SIGKILL') };
}

describe("the local fleet's supervisor (real processes, real HAProxy)", () => {
  it('tells a recorded pid that another process now holds from the host that had it, and leaves it alone', async () => {
    const fleet = await startLocalFleet({ dir: join(root, 'reused'), servers: 1, version: 'v1' });
    const other = bystander();
    try {
      assert.deepEqual(await hostVersions(fleet.dir), { 'web-1': 'v1' });
      await fleet.stop();
      // As if the kernel had handed both pids out again: the host's state file and HAProxy's pid file name it.
      writeFileSync(
        join(fleet.dir, 'hosts', 'web-1.json'),
        JSON.stringify({ pid: other.pid, version: 'v1' }),
      );
      writeFileSync(join(fleet.dir, 'haproxy', 'haproxy.pid'), String(other.pid));

      assert.deepEqual(await hostVersions(fleet.dir), { 'web-1': undefined }, 'web-1 is not running');
      assert.equal(await stopHost(fleet.dir, 'web-1'), false);
      assert.equal(await sweepFleets(root), 0, 'nothing of the fleet was left running');
      assert.ok(signalReaches(other.pid), 'the other process was not killed');
    } finally {
      other.end();
      await fleet.stop();
    }
  });

  it('sweeps a fleet that was never stopped: its hosts and HAProxy end', async () => {
    const fleet = await startLocalFleet({ dir: join(root, 'left'), servers: 2, version: 'v1' });
    const haproxyConfig = join(fleet.dir, 'haproxy', 'haproxy.cfg');
    assert.ok(runsWith(fleet.haproxy.pid, haproxyConfig));
    assert.deepEqual(await hostVersions(fleet.dir), { 'web-1': 'v1', 'web-2': 'v1' });

    assert.equal(await sweepFleets(root), 1);
    assert.deepEqual(await hostVersions(fleet.dir), { 'web-1': undefined, 'web-2': undefined });
    assert.equal(runsWith(fleet.haproxy.pid, haproxyConfig), false, 'HAProxy ended');
  });
});
