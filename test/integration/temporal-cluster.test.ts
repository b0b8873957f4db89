import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { Client, Connection } from '@temporalio/client';
import { stringify as toYaml } from 'yaml';
import { ensureTemporalCli } from '../../infra/components';
import { upgradeCommands } from '../../infra/fleet/hosts';
import type { LocalFleet } from '../../infra/fleet/local-fleet';
import { startLoad } from '../../infra/load';
import { delay } from '../../infra/processes';
import type { TemporalCluster } from '../../infra/temporal-cluster';
import { clientTls, startTemporalCluster } from '../../infra/temporal-cluster';
import type { rolloutWorkflow } from '../../workflows';
import { searchAttributes, statusQuery } from '../../workflows/messages';
import { startTestFleet } from '../helpers/fleet';
import type { Finished } from '../helpers/process';
import { runToEnd } from '../helpers/process';
import { readmeCommandsStartingWith } from '../helpers/readme';
import { killLanded } from '../helpers/kill-landed';
import { until } from '../helpers/rollout';
import type { WorkerProcess } from '../helpers/worker';
import { startWorkerProcess } from '../helpers/worker';

/**
 * Baton against Temporal as production runs it: the Temporal server (not the dev server) on PostgreSQL, its
 * frontend behind mutual TLS, workers and the CLI connected by the environment and profile settings users set.
 */
const root = join(__dirname, '..', '..');
const namespace = 'baton';

let dir: string;
let cluster: TemporalCluster;
/** What an operator exports: the cluster's address, the TLS files, the namespace. */
let env: Record<string, string>;
/** A temporal CLI profile (TOML) with the same settings, as `TEMPORAL_PROFILE` users keep them. */
let profileEnv: Record<string, string>;
let client: Client;
const fleets: LocalFleet[] = [];
const workers: WorkerProcess[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'baton-temporal-cluster-'));
  cluster = await startTemporalCluster({ dir });
  env = { ...cluster.env, TEMPORAL_NAMESPACE: namespace };
  const profileFile = join(dir, 'temporal.toml');
  await writeFile(
    profileFile,
    [
      '[profile.production]',
      `address = "${cluster.address}"`,
      `namespace = "${namespace}"`,
      '[profile.production.tls]',
      `client_cert_path = "${cluster.pki.client.cert}"`,
      `client_key_path = "${cluster.pki.client.key}"`,
      `server_ca_cert_path = "${cluster.pki.ca}"`,
      `server_name = "${cluster.pki.serverName}"`,
      '',
    ].join('\n'),
  );
  profileEnv = { TEMPORAL_CONFIG_FILE: profileFile, TEMPORAL_PROFILE: 'production' };

  // As README.md tells operators: the namespace, then Baton's search attributes, with the temporal CLI.
  const temporalCli = await ensureTemporalCli();
  for (const line of [
    ...readmeCommandsStartingWith('temporal operator namespace create'),
    ...readmeCommandsStartingWith('temporal operator search-attribute create'),
  ]) {
    // A namespace just created takes a moment to reach every service.
    let run: Finished | undefined;
    for (let attempt = 0; attempt < 30; attempt++) {
      run = await runToEnd('bash', ['-c', line], {
        env: { ...process.env, ...env, PATH: `${dirname(temporalCli)}:${process.env.PATH ?? ''}` },
      });
      if (run.code === 0) break;
      await delay(1_000);
    }
    assert.equal(run?.code, 0, `${line}\n${run?.stdout}${run?.stderr}`);
  }
  client = new Client({
    connection: await Connection.connect({ address: cluster.address, tls: await clientTls(cluster.pki) }),
    namespace,
  });
});

after(async () => {
  await Promise.all(workers.map((worker) => worker.stop()));
  await Promise.all(fleets.map((fleet) => fleet.stop()));
  await client?.connection.close();
  await cluster?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** `baton` as an operator runs it, with the profile or the environment given. */
const baton = (args: string[], connection: Record<string, string>) =>
  runToEnd(process.execPath, [join(root, 'bin', 'baton.js'), ...args], {
    cwd: root,
    env: { ...withoutTemporalSettings(process.env), ...connection, NO_COLOR: '1' },
  });

function withoutTemporalSettings(environment: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(environment).filter(([key]) => !key.startsWith('TEMPORAL_')));
}

let rollouts = 0;

/**
 * A 4-server fleet behind HAProxy under load, `workerCount` worker processes on one task queue (connected as
 * README.md says: the environment), and a rollout to v2 one server at a time started with `baton start`.
 */
async function rolloutUnderLoad(workerCount: number) {
  const fleet = await startTestFleet({
    servers: 4,
    version: 'v1',
    defaults: { latencyMs: 5, startupMs: 1_500 },
  });
  fleets.push(fleet);
  const name = `cluster-web-${++rollouts}`;
  const taskQueue = `baton-cluster-${rollouts}`;
  const started = [];
  for (let i = 0; i < workerCount; i++)
    started.push(await startWorkerProcess({ ...env, BATON_TASK_QUEUE: taskQueue }));
  workers.push(...started);
  const specFile = join(dir, `${name}.yaml`);
  await writeFile(
    specFile,
    toYaml(fleet.spec({ version: 'v2', strategy: { type: 'rolling', batchSize: 1 } }, name)),
  );
  // Each request held 300 ms, as the crash matrix holds them: a drain has work to wait for, long enough to be seen.
  const load = startLoad({ url: `${fleet.haproxy.frontendUrl}/?delay=300`, ratePerSecond: 50 });
  const start = await baton(['start', '-f', specFile, '--detach'], {
    ...profileEnv,
    BATON_TASK_QUEUE: taskQueue,
  });
  assert.equal(start.code, 0, start.stderr);
  const handle = client.workflow.getHandle<typeof rolloutWorkflow>(`rollout/${name}`);
  return { fleet, name, handle, load, workers: started };
}

/** Waits until a server after the first is in `step`: mid-rollout, mid-step. */
async function untilStep(handle: WorkflowHandle<typeof rolloutWorkflow>, step: string): Promise<string> {
  let found: string | undefined;
  await until(async () => {
    const status = await handle.query(statusQuery).catch(() => undefined);
    found = status?.servers.slice(1).find((server) => server.step === step)?.name;
    return found !== undefined;
  }, 120_000);
  return found ?? '';
}

/** Upgrade commands to v2 run per server, from the command's own log. */
async function commandsPerServer(fleet: LocalFleet): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const { name, version } of await upgradeCommands(fleet.dir))
    if (version === 'v2') counts[name] = (counts[name] ?? 0) + 1;
  return counts;
}

const oncePerServer = { 'web-1': 1, 'web-2': 1, 'web-3': 1, 'web-4': 1 };

describe('Baton on the Temporal server with PostgreSQL and mutual TLS', () => {
  it('has the namespace and search attributes README.md has operators create, and baton list filters by them', async () => {
    const { customAttributes } = await client.connection.operatorService.listSearchAttributes({ namespace });
    for (const key of Object.values(searchAttributes))
      assert.ok(customAttributes && key.name in customAttributes, `${key.name} is registered`);
    const listed = await baton(['list'], profileEnv);
    assert.equal(listed.code, 0, listed.stderr);
  });

  it('refuses a CLI without the client certificate, and one without TLS', async () => {
    const noCertificate = Object.fromEntries(
      Object.entries(env).filter(([key]) => !key.startsWith('TEMPORAL_TLS_CLIENT_')),
    );
    const refused = await baton(['list'], noCertificate);
    assert.equal(refused.code, 1, refused.stdout);
    assert.match(refused.stderr, new RegExp(`cannot reach Temporal at ${cluster.address}`));
    const plain = await baton(['list'], { TEMPORAL_ADDRESS: cluster.address, TEMPORAL_NAMESPACE: namespace });
    assert.equal(plain.code, 1, plain.stdout);
    assert.match(plain.stderr, new RegExp(`cannot reach Temporal at ${cluster.address}`));
  });

  it('a rollout survives SIGKILL of the Temporal server mid-upgrade: one command per server, no request failed', async () => {
    const { fleet, handle, load, name } = await rolloutUnderLoad(1);
    const upgrading = await untilStep(handle, 'upgrade');
    const killed = cluster.pid();
    const killedAt = Date.now();
    await cluster.kill();
    const status = await baton(['status', name], profileEnv);
    assert.equal(status.code, 1, `the CLI can't reach a killed server: ${status.stdout}`);
    await delay(2_000);
    await cluster.start();
    assert.notEqual(cluster.pid(), killed);
    const result = await handle.result();
    const stats = await load.stop();
    assert.equal(result.phase, 'succeeded', `${result.reason} (killed while ${upgrading} upgraded)`);
    assert.deepEqual(await commandsPerServer(fleet), oncePerServer);
    assert.equal(stats.failed, 0, JSON.stringify(stats.errors));
    assert.ok(stats.sent > 300, `sent ${stats.sent}`);
    // The kill fell inside an upgrade: one was scheduled before the server died and completed after.
    const landing = killLanded((await handle.fetchHistory()).events ?? [], {
      killedAt,
      killed: 'no worker was killed',
      work: { activities: /^upgradeServers?$/ },
    });
    assert.ok(landing.landed, `the kill fell inside an upgrade: ${landing.evidence}`);
  });

  it('a rollout survives PostgreSQL stopped hard and started again mid-drain', async () => {
    const { fleet, handle, load } = await rolloutUnderLoad(1);
    await untilStep(handle, 'drain');
    const stoppedAt = Date.now();
    await cluster.postgres.restart();
    const result = await handle.result();
    const stats = await load.stop();
    assert.equal(result.phase, 'succeeded', result.reason);
    assert.deepEqual(await commandsPerServer(fleet), oncePerServer);
    assert.equal(stats.failed, 0, JSON.stringify(stats.errors));
    assert.ok(stats.sent > 300, `sent ${stats.sent}`);
    // The restart fell inside the drain: a drain was scheduled before PostgreSQL stopped and completed after.
    const landing = killLanded((await handle.fetchHistory()).events ?? [], {
      killedAt: stoppedAt,
      killed: 'no worker was killed',
      work: { activities: /^drainServers?$/ },
    });
    assert.ok(landing.landed, `the restart fell inside a drain: ${landing.evidence}`);
  });

  for (const workerCount of [2, 3]) {
    it(`${workerCount} workers share the task queue; the one running an upgrade is killed and another finishes`, async () => {
      const { fleet, handle, load, workers: started } = await rolloutUnderLoad(workerCount);
      await untilStep(handle, 'upgrade');
      const description = await handle.describe();
      const identity = description.raw.pendingActivities?.[0]?.lastWorkerIdentity ?? '';
      const pid = Number(identity.split('@')[0]);
      const running = started.find((worker) => worker.child.pid === pid);
      assert.ok(running, `the upgrade runs on one of the workers (${identity})`);
      await running.crash();
      const result = await handle.result();
      const stats = await load.stop();
      assert.equal(result.phase, 'succeeded', result.reason);
      assert.deepEqual(await commandsPerServer(fleet), oncePerServer);
      assert.equal(stats.failed, 0, JSON.stringify(stats.errors));
      // The rollout's steps ran on the killed worker and then on another one polling the same queue.
      const identities = new Set<string>();
      for (const event of (await handle.fetchHistory()).events ?? [])
        if (event.activityTaskStartedEventAttributes?.identity)
          identities.add(event.activityTaskStartedEventAttributes.identity);
      assert.ok(identities.has(identity), `steps ran on the killed worker: ${[...identities].join(', ')}`);
      assert.ok(identities.size >= 2, `steps ran on ${[...identities].join(', ')}`);
    });
  }
});
