import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { realActivityDeps } from '../../activities';
import { createFleetActivities } from '../../activities/fleet-activities';
import { HaproxyCommandError, HaproxyRuntimeApi } from '../../activities/haproxy/runtime-api';
import { HaproxyTrafficProvider } from '../../activities/haproxy/traffic-provider';
import { ExecHostExecutor } from '../../activities/hosts/exec-host-executor';
import type { DrainOutcome } from '../../activities/fleet-activities';
import { startHost, stopHost } from '../../infra/fleet/hosts';
import { freePort } from '../../infra/ports';
import type { LocalFleet } from '../../infra/fleet/local-fleet';
import { parseRolloutSpec } from '../../spec';
import type { DrainPolicy, FleetTarget, RolloutSpec } from '../../spec';
import { startTestFleet } from '../helpers/fleet';
import { delay } from '../../infra/processes';

let fleet: LocalFleet;
let spec: RolloutSpec;
let target: FleetTarget;
before(async () => {
  fleet = await startTestFleet({ servers: 2, version: 'v1' });
  spec = parseRolloutSpec(
    fleet.spec({ version: 'v2', verify: { http: { passes: 2, interval: '50ms', timeout: '600ms' } } }),
  );
  target = spec.target as FleetTarget;
});
after(async () => fleet.stop());

const activities = () => createFleetActivities(realActivityDeps());
/** The spec's verify.http, which a fleet's spec always has. */
const fleetVerify = () => {
  assert.ok(spec.verify, 'a fleet spec has verify.http');
  return spec.verify.http;
};
const lb = () => target.loadBalancer.haproxy;

describe('HAProxy Runtime API client (real HAProxy)', () => {
  it('keeps the admin socket private to its owner (mode 600)', () => {
    assert.equal(statSync(fleet.haproxy.socket).mode & 0o777, 0o600);
  });

  it('lists the servers of the backend', async () => {
    assert.deepEqual(await new HaproxyTrafficProvider(fleet.haproxy.socket, 'web').listServers(), [
      'web-1',
      'web-2',
    ]);
  });

  it('detaches to DRAIN and attaches back, idempotently', async () => {
    const traffic = new HaproxyTrafficProvider(fleet.haproxy.socket, 'web');
    await traffic.detach('web-1');
    await traffic.detach('web-1');
    assert.equal((await traffic.traffic('web-1')).status, 'DRAIN');
    await traffic.attach('web-1');
    await traffic.attach('web-1');
    assert.notEqual((await traffic.traffic('web-1')).status, 'DRAIN');
  });

  it("fails with HAProxy's own words for an unknown server or backend", async () => {
    await assert.rejects(
      new HaproxyTrafficProvider(fleet.haproxy.socket, 'web').detach('web-9'),
      (error: unknown) => {
        assert.ok(error instanceof HaproxyCommandError);
        assert.match(error.message, /set server web\/web-9 state drain.*No such server/);
        return true;
      },
    );
    await assert.rejects(
      new HaproxyTrafficProvider(fleet.haproxy.socket, 'nope').detach('web-1'),
      /No such backend/,
    );
    await assert.rejects(
      new HaproxyRuntimeApi(fleet.haproxy.socket).execute('set server web/web-1 weight abc'),
      /Empty weight string/,
    );
  });

  it('sets a server weight', async () => {
    const traffic = new HaproxyTrafficProvider(fleet.haproxy.socket, 'web');
    await traffic.setWeight('web-2', 50);
    assert.equal((await traffic.traffic('web-2')).weight, 50);
    await traffic.setWeight('web-2', 1);
  });

  it('refuses to send a second command smuggled into one', () => {
    assert.throws(
      () => new HaproxyRuntimeApi(fleet.haproxy.socket).send('show stat; shutdown sessions server web/web-1'),
      /refusing/,
    );
  });
});

describe('drainServer (real HAProxy, real requests)', () => {
  const policy = (overrides: Partial<DrainPolicy>): DrainPolicy => ({
    timeout: 10_000,
    onTimeout: 'fail',
    pollInterval: 50,
    ...overrides,
  });

  /**
   * Sends a slow request through HAProxy until one lands on the given server; returns while it is in flight
   * (wrapped, since an async function returning a bare promise would wait for it).
   */
  async function slowRequestOn(server: string, ms: number): Promise<{ status: Promise<number> }> {
    const traffic = new HaproxyTrafficProvider(fleet.haproxy.socket, 'web');
    for (let attempt = 0; attempt < 10; attempt++) {
      const response = fetch(`${fleet.haproxy.frontendUrl}/?delay=${ms}`).then((r) => r.status);
      await delay(100);
      if ((await traffic.traffic(server)).sessions > 0) return { status: response };
      await response;
    }
    throw new Error(`no request landed on ${server}: is it still detached?`);
  }

  /**
   * Puts a slow request on a server, detaches it, and runs the test body; the server is attached again whatever
   * the body does, so a failed assertion can't leave it out of rotation for the tests after it.
   */
  async function whileDetached(
    server: string,
    requestMs: number,
    body: (inFlight: Promise<number>) => Promise<void>,
  ): Promise<void> {
    const { status: inFlight } = await slowRequestOn(server, requestMs);
    await activities().detachServer({ loadBalancer: lb(), server });
    try {
      await body(inFlight);
    } finally {
      await inFlight.catch(() => undefined);
      await new MockActivityEnvironment().run(activities().attachServer, { loadBalancer: lb(), server });
    }
  }

  async function drain(
    env: MockActivityEnvironment,
    server: string,
    overrides: Partial<DrainPolicy>,
  ): Promise<DrainOutcome> {
    const outcome: DrainOutcome = await env.run(activities().drainServer, {
      loadBalancer: lb(),
      server,
      policy: policy(overrides),
    });
    return outcome;
  }

  it('waits for the request in flight, heartbeating, then reports drained', async () => {
    await whileDetached('web-1', 1_500, async (inFlight) => {
      const env = new MockActivityEnvironment();
      const heartbeats: unknown[] = [];
      env.on('heartbeat', (d: unknown) => heartbeats.push(d));
      const started = Date.now();
      const outcome: DrainOutcome = await drain(env, 'web-1', {});
      assert.equal(outcome.drained, true);
      assert.ok(Date.now() - started >= 900, `waited ${Date.now() - started} ms for the request`);
      assert.equal(await inFlight, 200);
      assert.ok(heartbeats.length >= 5, `heartbeats: ${heartbeats.length}`);
    });
  });

  it('fails past the timeout when the policy says fail, naming what is left', async () => {
    await whileDetached('web-2', 1_500, async (inFlight) => {
      await assert.rejects(
        drain(new MockActivityEnvironment(), 'web-2', { timeout: 200 }),
        (error: unknown) => {
          assert.ok(error instanceof ApplicationFailure);
          assert.equal(error.type, 'DrainTimeout');
          assert.equal(error.nonRetryable, true);
          assert.match(error.message, /web-2 did not drain within 200 ms \(1 sessions/);
          return true;
        },
      );
      assert.equal(await inFlight, 200);
    });
  });

  it('goes on past the timeout when the policy says force, and says so', async () => {
    await whileDetached('web-2', 1_500, async () => {
      const outcome: DrainOutcome = await drain(new MockActivityEnvironment(), 'web-2', {
        timeout: 200,
        onTimeout: 'force',
      });
      assert.equal(outcome.drained, false);
      assert.equal(outcome.remaining?.sessions, 1);
    });
  });

  it('stops waiting when the activity is cancelled', async () => {
    await whileDetached('web-1', 2_000, async () => {
      const env = new MockActivityEnvironment();
      const draining = drain(env, 'web-1', { onTimeout: 'wait' });
      setTimeout(() => env.cancel(), 300);
      await assert.rejects(draining, /cancel/i);
    });
  });
});

describe('attachServer (real HAProxy health checks)', () => {
  it('returns only once HAProxy sees the server UP again, not when it merely accepted the command', async () => {
    const traffic = new HaproxyTrafficProvider(fleet.haproxy.socket, 'web');
    // Given web-2 detached, stopped long enough for HAProxy's checks to mark it DOWN, and started again
    await activities().detachServer({ loadBalancer: lb(), server: 'web-2' });
    await stopHost(fleet.dir, 'web-2');
    const deadline = Date.now() + 10_000;
    while (!(await traffic.traffic('web-2')).status.startsWith('DOWN')) {
      assert.ok(Date.now() < deadline, 'HAProxy marked web-2 DOWN');
      await delay(100);
    }
    await startHost(fleet.dir, 'web-2', 'v1');
    // When it is attached
    await new MockActivityEnvironment().run(activities().attachServer, {
      loadBalancer: lb(),
      server: 'web-2',
    });
    // Then HAProxy already counts it UP (its checks need `rise 2` passes, seconds after the process listens)
    assert.match((await traffic.traffic('web-2')).status, /^UP/);
  });
});

describe('upgradeServer and verifyServer (real processes, real HTTP)', () => {
  it('verifies a server that reports the expected version N times in a row', async () => {
    const result: { checks: number } = await new MockActivityEnvironment().run(activities().verifyServer, {
      server: target.servers[0],
      verify: fleetVerify(),
      version: 'v1',
    });
    assert.equal(result.checks, 2);
  });

  it('fails verification, saying what the server reported, when the version is wrong', async () => {
    await assert.rejects(
      new MockActivityEnvironment().run(activities().verifyServer, {
        server: target.servers[0],
        verify: fleetVerify(),
        version: 'v9',
      }),
      /web-1 failed verification for v9 after \d+ checks: reports version v1, expected v9/,
    );
  });

  it('runs the upgrade argv and puts the failing command and its output in the error', async () => {
    const upgrade = {
      argv: [process.execPath, '-e', 'console.error("no space left on device"); process.exit(3)'],
      timeout: 5_000,
    };
    await assert.rejects(
      new MockActivityEnvironment().run(activities().upgradeServer, {
        server: target.servers[0],
        upgrade,
        version: 'v2',
      }),
      (error: unknown) => {
        assert.ok(error instanceof ApplicationFailure);
        assert.match(
          error.message,
          /upgrade of web-1 to v2: .* exited with code 3:\nno space left on device/s,
        );
        return true;
      },
    );
  });

  it('asks a server its version before a retried upgrade, so the command runs once', async () => {
    const runs = `/tmp/baton-upgrade-runs-${process.pid}`;
    rmSync(runs, { force: true });
    // A command that is not idempotent: each run leaves a line behind.
    const upgrade = {
      argv: [process.execPath, '-e', `require('fs').appendFileSync(${JSON.stringify(runs)}, 'ran\\n')`],
      timeout: 5_000,
    };
    const upgradeOn = (attempt: number, version: string) =>
      new MockActivityEnvironment({ attempt }).run(activities().upgradeServer, {
        server: target.servers[0],
        upgrade,
        version,
        verify: fleetVerify(),
      });
    // A retry of a server that already answers v1 (the attempt before did its work, then the worker died)
    await upgradeOn(2, 'v1');
    assert.equal(existsSync(runs), false, 'the command did not run again');
    // A retry of a server still on the old version, and a first attempt, run it
    await upgradeOn(2, 'v2');
    await upgradeOn(1, 'v1');
    assert.equal(readFileSync(runs, 'utf8'), 'ran\nran\n');
    rmSync(runs, { force: true });
  });

  it('kills an upgrade command past its timeout', async () => {
    const upgrade = { argv: [process.execPath, '-e', 'setTimeout(() => {}, 10000)'], timeout: 300 };
    await assert.rejects(
      new MockActivityEnvironment().run(activities().upgradeServer, {
        server: target.servers[0],
        upgrade,
        version: 'v2',
      }),
      /timed out after 300 ms/,
    );
  });

  it('passes hostile-looking values to the program as plain arguments, never to a shell', async () => {
    const marker = `/tmp/baton-pwned-${process.pid}`;
    const result = await new ExecHostExecutor().run(['/bin/echo', `web-1;touch ${marker}`, '$(id)', '`id`'], {
      timeoutMs: 5_000,
    });
    assert.equal(result.stdout, `web-1;touch ${marker} $(id) \`id\`\n`);
    assert.throws(() => statSync(marker), /ENOENT/);
  });
});

describe('the local fleet’s hosts (real processes)', () => {
  it('a host whose port another process took while it was down fails to start, rather than pass for it', async () => {
    const [host = '', port = ''] = target.servers[1]?.address.split(':') ?? [];
    await stopHost(fleet.dir, 'web-2');
    // Whoever took the port answers on it: only the host's own word says that the host started.
    const intruder = createServer((_, response) => response.end('v2')).listen(Number(port), host);
    await once(intruder, 'listening');
    try {
      await assert.rejects(startHost(fleet.dir, 'web-2', 'v2'), /web-2 v2 exited at start/);
    } finally {
      intruder.close();
    }
    await once(intruder, 'close');
    assert.equal(await startHost(fleet.dir, 'web-2', 'v1'), 'started');
  });

  it('runs servers on ports below the kernel’s own and Kubernetes’ NodePort ranges', async () => {
    const [kernelFirst = ''] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/);
    const picks = await Promise.all(Array.from({ length: 50 }, () => freePort()));
    for (const port of picks) {
      assert.ok(port >= 11_000 && port < Math.min(Number(kernelFirst), 30_000), `port ${port}`);
    }
  });
});
