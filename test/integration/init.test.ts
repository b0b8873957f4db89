import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { KubeConfig } from '@kubernetes/client-node';
import { countStarts, hostVersions } from '../../infra/fleet/hosts';
import type { LocalFleet } from '../../infra/fleet/local-fleet';
import type { LocalCluster } from '../../infra/kubernetes-cluster';
import { loadRolloutSpecFile } from '../../spec';
import { deploymentsOf, seedApp, startTestCluster } from '../helpers/kubernetes';
import { startTestFleet } from '../helpers/fleet';
import { runToEnd } from '../helpers/process';
import type { TestTemporal } from '../helpers/temporal';
import { connectTestTemporal, uniqueTaskQueue } from '../helpers/temporal';
import type { WorkerProcess } from '../helpers/worker';
import { startWorkerProcess } from '../helpers/worker';

const root = join(__dirname, '..', '..');
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'baton-init-'));
});
after(() => rm(dir, { recursive: true, force: true }));

/** `npx baton …` in the project, as README.md shows it. */
const baton = (env: NodeJS.ProcessEnv, ...args: string[]) =>
  runToEnd('npx', ['baton', ...args], { cwd: root, env: { ...env, NO_COLOR: '1' } });

describe('baton init fleet (real HAProxy, real servers)', () => {
  let temporal: TestTemporal;
  let fleet: LocalFleet;
  let worker: WorkerProcess;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    temporal = await connectTestTemporal();
    fleet = await startTestFleet({ servers: 3, version: 'v1' });
    env = {
      ...process.env,
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: temporal.namespace,
      BATON_TASK_QUEUE: uniqueTaskQueue('init-fleet'),
    };
    worker = await startWorkerProcess(env);
  });
  after(async () => {
    await worker.stop();
    await fleet.stop();
    await temporal.close();
  });

  it('writes a commented spec from the backend that starts unchanged, then rolls to --version', async () => {
    const file = join(dir, 'fleet.yaml');
    const init = await baton(
      env,
      'init',
      'fleet',
      '--socket',
      fleet.haproxy.socket,
      '--backend',
      'web',
      '--name',
      'init-web',
      '-f',
      file,
      '--',
      ...fleet.upgradeArgv,
    );
    assert.equal(init.code, 0, init.stderr);
    assert.match(init.stderr, new RegExp(`wrote ${file}`));
    const text = await readFile(file, 'utf8');
    assert.match(text, /^# A Baton rollout of HAProxy backend web \(3 servers/);
    const spec = await loadRolloutSpecFile(file);
    assert.equal(spec.version, 'v1', 'the version the servers report at /healthz');
    assert.ok(spec.target.kind === 'fleet');
    assert.deepEqual(
      spec.target.servers.map(({ name, address }) => ({ name, address })),
      fleet.servers.map(({ name, address }) => ({ name, address })),
    );
    assert.deepEqual(spec.target.upgrade?.argv, fleet.upgradeArgv);

    const startsBefore = (await countStarts(fleet.dir)).length;
    const unchanged = await baton(env, 'start', '-f', file);
    assert.equal(unchanged.code, 0, unchanged.stderr);
    assert.match(unchanged.stdout, /init-web: succeeded, 3 servers on v1/);
    assert.equal((await countStarts(fleet.dir)).length, startsBefore, 'nothing was restarted');

    const next = await baton(env, 'start', '-f', file, '--version', 'v2');
    assert.equal(next.code, 0, next.stderr);
    assert.match(next.stdout, /init-web: succeeded, 3 servers on v2/);
    assert.deepEqual(Object.values(await hostVersions(fleet.dir)), ['v2', 'v2', 'v2']);
  });

  it('refuses what it cannot read, writing nothing: no backend (3), no socket (1), a file that exists (2)', async () => {
    const file = join(dir, 'never.yaml');
    const initFleet = (socket: string, backend: string, ...rest: string[]) =>
      baton(env, 'init', 'fleet', '--socket', socket, '--backend', backend, ...rest);
    const noBackend = await initFleet(fleet.haproxy.socket, 'nope', '-f', file, '--', 'deploy');
    assert.equal(noBackend.code, 3, noBackend.stderr);
    assert.match(noBackend.stderr, /no backend named nope/);
    const noSocket = await initFleet(join(dir, 'no.sock'), 'web', '-f', file, '--', 'deploy');
    assert.equal(noSocket.code, 1, noSocket.stderr);
    assert.match(noSocket.stderr, /unreachable/);
    const badVersion = await initFleet(
      fleet.haproxy.socket,
      'web',
      '--version',
      'v1;x',
      '-f',
      file,
      '--',
      'deploy',
    );
    assert.equal(badVersion.code, 2, badVersion.stderr);
    assert.match(badVersion.stderr, /version: expected a version/);
    const noUpgrade = await initFleet(fleet.haproxy.socket, 'web', '-f', file);
    assert.equal(noUpgrade.code, 2, noUpgrade.stderr);
    assert.match(noUpgrade.stderr, /missing required argument 'upgrade'/);
    await assert.rejects(readFile(file), /ENOENT/, 'nothing was written');
    const existing = join(dir, 'existing.yaml');
    await writeFile(existing, '# mine\n');
    const taken = await initFleet(fleet.haproxy.socket, 'web', '-f', existing, '--', 'deploy');
    assert.equal(taken.code, 2, taken.stderr);
    assert.match(taken.stderr, /exists/);
    assert.equal(await readFile(existing, 'utf8'), '# mine\n');
  });
});

describe('baton init kubernetes (real control plane)', () => {
  let cluster: LocalCluster;
  let kc: KubeConfig;
  let temporal: TestTemporal;
  let stop: () => Promise<void>;
  let worker: WorkerProcess;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    ({ cluster, kc, temporal, stop } = await startTestCluster('baton-init'));
    env = {
      ...process.env,
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: temporal.namespace,
      BATON_TASK_QUEUE: uniqueTaskQueue('init-kubernetes'),
      KUBECONFIG: cluster.kubeconfig,
    };
    worker = await startWorkerProcess(env);
  });
  after(async () => {
    await worker.stop();
    await stop();
  });

  it('writes a spec from the Deployment and its Service that starts unchanged, then rolls to --version', async () => {
    await seedApp(kc, 'shop', { replicas: 3, image: 'registry.local/web' });
    const file = join(dir, 'kubernetes.yaml');
    const init = await baton(env, 'init', 'kubernetes', '--deployment', 'web', '-n', 'shop', '-f', file);
    assert.equal(init.code, 0, init.stderr);
    const text = await readFile(file, 'utf8');
    assert.match(text, /^# A Baton rollout of Deployment shop\/web, container app/);
    const spec = await loadRolloutSpecFile(file);
    assert.ok(spec.target.kind === 'kubernetes');
    assert.equal(spec.target.namespace, 'shop');
    assert.equal(spec.target.container, 'app');
    assert.equal(spec.target.image, 'registry.local/web');
    assert.equal(spec.target.service, 'web', 'the Service whose selector picks its pods');
    assert.equal(spec.version, 'v1');

    const unchanged = await baton(env, 'start', '-f', file);
    assert.equal(unchanged.code, 0, unchanged.stderr);
    assert.match(unchanged.stdout, /web: succeeded/);
    assert.deepEqual(
      await deploymentsOf(kc, 'shop'),
      { web: { replicas: 3, available: 3 } },
      'nothing changed',
    );

    const next = await baton(env, 'start', '-f', file, '--version', 'v2');
    assert.equal(next.code, 0, next.stderr);
    assert.match(next.stdout, /web: succeeded, 3 replicas on v2/);
    assert.deepEqual((await deploymentsOf(kc, 'shop'))['web-v2'], { replicas: 3, available: 3 });
  });

  it('a Deployment that does not exist: exit 3, nothing written', async () => {
    const file = join(dir, 'missing.yaml');
    const init = await baton(env, 'init', 'kubernetes', '--deployment', 'nope', '-n', 'shop', '-f', file);
    assert.equal(init.code, 3, init.stderr);
    assert.match(init.stderr, /no Deployment nope in namespace shop/);
    await assert.rejects(readFile(file), /ENOENT/);
  });
});
