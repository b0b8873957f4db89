import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { realActivityDeps } from '../../activities';
import { HaproxyTrafficProvider } from '../../activities/haproxy/traffic-provider';
import { countStarts, hostVersions } from '../../infra/fleet/hosts';
import { startLoad } from '../../infra/load';
import { parseRolloutSpec } from '../../spec';
import { inRotation, useFleets } from '../helpers/fleet';
import { recordingDeps, hideSocketFor } from '../helpers/faults';
import { startRolloutInProcess } from '../helpers/rollout';

const { temporal, fleet: startFleet } = useFleets();

/** A command wrapper that fails the first time it runs for a server, then runs the real command. */
const failOnce = `
const { existsSync, writeFileSync } = require('node:fs');
const { spawnSync } = require('node:child_process');
const [marker, ...command] = process.argv.slice(2);
if (!existsSync(marker)) {
  writeFileSync(marker, 'failed once');
  process.stderr.write('mirror timed out (injected)\\n');
  process.exit(1);
}
process.exit(spawnSync(command[0], command.slice(1), { stdio: 'inherit' }).status ?? 1);
`;

/** A command wrapper that always fails for one version (a broken package), and runs the real command otherwise. */
const failFor = `
const { spawnSync } = require('node:child_process');
const [bad, ...command] = process.argv.slice(2);
if (command.at(-1) === bad) {
  process.stderr.write('package ' + bad + ' is corrupt (injected)\\n');
  process.exit(1);
}
process.exit(spawnSync(command[0], command.slice(1), { stdio: 'inherit' }).status ?? 1);
`;

describe('faults at the targets, on a real fleet behind real HAProxy', () => {
  it('an upgrade command that fails once is retried and the rollout succeeds, each server started once', async () => {
    const fleet = await startFleet({ servers: 3, version: 'v1' });
    const wrapper = join(fleet.dir, 'fail-once.js');
    await writeFile(wrapper, failOnce);
    const input = fleet.spec({ version: 'v2', strategy: { type: 'rolling', batchSize: 1 } }, 'fault-once');
    const target = input.target as { upgrade: { argv: string[] } };
    target.upgrade.argv = [
      process.execPath,
      wrapper,
      join(fleet.dir, 'marker-{name}'),
      ...target.upgrade.argv,
    ];
    const load = startLoad({ url: `${fleet.haproxy.frontendUrl}/`, ratePerSecond: 100 });
    const { handle, stop } = await startRolloutInProcess(
      temporal(),
      realActivityDeps(),
      parseRolloutSpec(input),
    );
    try {
      const result = await handle.result();
      const stats = await load.stop();
      assert.equal(result.phase, 'succeeded', result.reason);
      assert.equal(stats.failed, 0);
      assert.deepEqual(Object.values(await hostVersions(fleet.dir)), ['v2', 'v2', 'v2']);
      assert.equal((await countStarts(fleet.dir)).filter((s) => s.version === 'v2').length, 3);
      const history = await handle.fetchHistory();
      const retried = (history.events ?? []).filter(
        (e) =>
          e.activityTaskStartedEventAttributes && (e.activityTaskStartedEventAttributes.attempt ?? 1) > 1,
      );
      assert.equal(retried.length, 3, 'each upgrade ran a second attempt');
    } finally {
      await load.stop();
      await stop();
    }
  });

  it('an upgrade that always fails exceeds the failure budget and everything is rolled back', async () => {
    const fleet = await startFleet({ servers: 3, version: 'v1' });
    const wrapper = join(fleet.dir, 'fail-for.js');
    await writeFile(wrapper, failFor);
    const input = fleet.spec({ version: 'v2', strategy: { type: 'rolling', batchSize: 1 } }, 'fault-always');
    const target = input.target as { upgrade: { argv: string[] } };
    target.upgrade.argv = [process.execPath, wrapper, 'v2', ...target.upgrade.argv];
    const { handle, stop } = await startRolloutInProcess(
      temporal(),
      realActivityDeps(),
      parseRolloutSpec(input),
    );
    try {
      const result = await handle.result();
      assert.equal(result.phase, 'rolled-back');
      assert.match(
        result.reason ?? '',
        /1 of 3 servers failed, past the failure budget of 0%.*package v2 is corrupt/s,
      );
      assert.deepEqual(Object.values(await hostVersions(fleet.dir)), ['v1', 'v1', 'v1']);
      const traffic = new HaproxyTrafficProvider(fleet.haproxy.socket, 'web');
      for (const server of fleet.servers)
        assert.match((await traffic.traffic(server.name)).status, inRotation);
    } finally {
      await stop();
    }
  });

  it('a server that does not drain in time goes on as the policy says, and the status records it', async () => {
    const fleet = await startFleet({ servers: 2, version: 'v1' });
    // Long requests on every server: whichever goes first still has one when its drain times out.
    const slow = Array.from({ length: 4 }, () =>
      fetch(`${fleet.haproxy.frontendUrl}/?delay=4000`).then((r) => r.status),
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    const { handle, stop } = await startRolloutInProcess(
      temporal(),
      realActivityDeps(),
      parseRolloutSpec({
        ...fleet.spec({ version: 'v2', strategy: { type: 'rolling', batchSize: 1 } }, 'fault-drain'),
        drain: { timeout: '500ms', onTimeout: 'force', pollInterval: '100ms' },
      }),
    );
    try {
      const result = await handle.result();
      assert.equal(result.phase, 'succeeded', result.reason);
      assert.ok(
        result.servers.some((s) => s.drainForced),
        `a forced drain is recorded: ${JSON.stringify(result.servers)}`,
      );
      // The demo app finishes its requests on SIGTERM, so even a forced drain cut nothing here.
      assert.deepEqual(await Promise.all(slow), [200, 200, 200, 200]);
    } finally {
      await stop();
    }
  });
});

/**
 * The admin socket gone for 10 s, from the moment a step's activity first calls out (a step that never reads
 * HAProxy, verify, is followed into the step after it). The steps' activities, matched by name, single or grouped.
 */
const socketOutages = [
  { step: 'detach', startsIn: /^detachServers?$/, failsIn: /^detachServers?$/ },
  { step: 'drain', startsIn: /^drainServers?$/, failsIn: /^drainServers?$/ },
  { step: 'upgrade', startsIn: /^upgradeServers?$/, failsIn: /^upgradeServers?$/ },
  { step: 'verify', startsIn: /^verifyServers?$/, failsIn: /^attachServers?$/ },
  { step: 'attach', startsIn: /^attachServers?$/, failsIn: /^attachServers?$/ },
] as const;

describe(
  "HAProxy's admin socket gone for 10 s in each step, on a real fleet under load",
  { concurrency: true },
  () => {
    for (const outage of socketOutages) {
      it(`during ${outage.step}: the failed commands are retried and the rollout succeeds, dropping nothing`, async () => {
        const fleet = await startFleet({ servers: 3, version: 'v1' });
        let hidden: ReturnType<typeof hideSocketFor> | undefined;
        const { deps, calls } = recordingDeps(realActivityDeps(), (activity) => {
          if (!hidden && outage.startsIn.test(activity)) hidden = hideSocketFor(fleet.haproxy.socket, 10_000);
        });
        const load = startLoad({ url: `${fleet.haproxy.frontendUrl}/`, ratePerSecond: 100 });
        const { handle, stop } = await startRolloutInProcess(
          temporal(),
          deps,
          parseRolloutSpec(
            fleet.spec(
              { version: 'v2', strategy: { type: 'rolling', batchSize: 1 } },
              `fault-socket-${outage.step}`,
            ),
          ),
        );
        try {
          const result = await handle.result();
          const stats = await load.stop();
          assert.ok(hidden, `the socket was hidden: no ${outage.step} activity called out`);
          await hidden.restored;
          assert.equal(result.phase, 'succeeded', result.reason);
          assert.ok(stats.sent > 500, `requests sent: ${stats.sent}`);
          assert.equal(stats.failed, 0, `failed requests: ${JSON.stringify(stats.errors)}`);
          assert.deepEqual(Object.values(await hostVersions(fleet.dir)), ['v2', 'v2', 'v2']);
          assert.equal((await countStarts(fleet.dir)).filter((s) => s.version === 'v2').length, 3);
          // The fault landed: a call of the step failed on the missing socket, and the same step's calls worked again.
          const hiddenAt = hidden.hiddenAt;
          const failed = calls.find(
            (c) =>
              !c.ok && outage.failsIn.test(c.activity) && c.at >= hiddenAt && /ENOENT/.test(c.error ?? ''),
          );
          assert.ok(
            failed,
            `no ${outage.step} call failed on the hidden socket: ${JSON.stringify(calls.slice(-5))}`,
          );
          assert.ok(
            calls.some((c) => c.ok && outage.failsIn.test(c.activity) && c.at > failed.at),
            `the failed ${failed.activity} call was not retried to success`,
          );
        } finally {
          await load.stop();
          await stop();
          await hidden?.restored.catch(() => undefined);
        }
      });
    }
  },
);
