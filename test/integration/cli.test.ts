import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import { stringify } from 'yaml';
import { realActivityDeps } from '../../activities';
import { hostVersions } from '../../infra/fleet/hosts';
import type { LocalFleet } from '../../infra/fleet/local-fleet';
import { createBatonWorker } from '../../worker/create-worker';
import { startTestFleet } from '../helpers/fleet';
import type { Finished } from '../helpers/process';
import { runToEnd } from '../helpers/process';
import type { TestTemporal } from '../helpers/temporal';
import { connectTestTemporal, uniqueTaskQueue, workflowBundle } from '../helpers/temporal';

const root = join(__dirname, '..', '..');
let temporal: TestTemporal;
let fleet: LocalFleet;
let worker: Worker;
let workerRun: Promise<void>;
let dir: string;
const taskQueue = uniqueTaskQueue('cli');

before(async () => {
  temporal = await connectTestTemporal();
  fleet = await startTestFleet({ servers: 3, version: 'v1' });
  dir = await mkdtemp(join(tmpdir(), 'baton-cli-'));
  worker = await createBatonWorker({
    connection: temporal.nativeConnection,
    namespace: temporal.namespace,
    taskQueue,
    deps: realActivityDeps(),
    workflowBundle: await workflowBundle(),
  });
  workerRun = worker.run();
});
after(async () => {
  worker.shutdown();
  await workerRun;
  await fleet.stop();
  await temporal.close();
  await rm(dir, { recursive: true, force: true });
});

/** Runs the real `baton` bin, as a user would, against the test Temporal server. */
function baton(args: string[], env: NodeJS.ProcessEnv = { BATON_TASK_QUEUE: taskQueue }): Promise<Finished> {
  return runToEnd(process.execPath, [join(root, 'bin', 'baton.js'), ...args], {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: temporal.namespace,
      BATON_TASK_QUEUE: taskQueue,
      NO_COLOR: '1',
      ...env,
    },
  });
}

async function specFile(name: string, spec: unknown): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, stringify(spec));
  return path;
}

describe('baton CLI (real Temporal, real fleet)', () => {
  it('baton start -f rolls the fleet, follows it with progress, and exits 0', async () => {
    const file = await specFile('rollout.yaml', fleet.spec({ version: 'v2' }, 'cli-web'));
    const { code, stdout, stderr } = await baton(['start', '-f', file]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /cli-web: succeeded, 3 servers on v2/);
    assert.match(stderr, /web-3: verify \(v2\)/, 'progress was shown');
    assert.deepEqual(Object.values(await hostVersions(fleet.dir)), ['v2', 'v2', 'v2']);
  });

  it('baton status shows the finished rollout as JSON', async () => {
    const { code, stdout } = await baton(['status', 'cli-web', '-o', 'json']);
    assert.equal(code, 0);
    const status = JSON.parse(stdout) as { phase: string; servers: Array<{ step: string }> };
    assert.equal(status.phase, 'succeeded');
    assert.equal(status.servers.length, 3);
  });

  it('baton status of an unknown target exits 3', async () => {
    const { code, stderr } = await baton(['status', 'no-such-target']);
    assert.equal(code, 3);
    assert.match(stderr, /no rollout of no-such-target/);
  });

  it('a bad spec exits 2, names the field, and starts nothing', async () => {
    const input = fleet.spec({ version: 'v3;reboot' }, 'cli-bad');
    const file = await specFile('bad.yaml', { ...input, strategy: { type: 'rolling', batchSize: '250%' } });
    const { code, stderr } = await baton(['start', '-f', file]);
    assert.equal(code, 2);
    assert.match(stderr, /version: expected a version/);
    assert.match(stderr, /strategy.batchSize: expected a percentage from 0% to 100%/);
    await assert.rejects(
      temporal.client.workflow.getHandle('rollout/cli-bad').describe(),
      WorkflowNotFoundError,
    );
  });

  it('a duplicate server name exits 2 before anything changes', async () => {
    const input = fleet.spec({ version: 'v3' }, 'cli-dup');
    const target = input.target as { servers: Array<{ name: string; address: string }> };
    target.servers.push({ name: 'web-1', address: '127.0.0.1:9' });
    const { code, stderr } = await baton(['start', '-f', await specFile('dup.yaml', input)]);
    assert.equal(code, 2);
    assert.match(stderr, /target.servers\[3\].name: duplicate server name "web-1"/);
  });

  it('a second rollout of a busy target exits 3, naming the running one', async () => {
    const file = await specFile(
      'busy.yaml',
      fleet.spec(
        { version: 'v3', strategy: { type: 'rolling', batchSize: 1, pauseBetweenBatches: '3s' } },
        'cli-busy',
      ),
    );
    const first = await baton(['start', '-f', file, '--detach', '-o', 'json']);
    assert.equal(first.code, 0, first.stderr);
    assert.equal((JSON.parse(first.stdout) as { workflowId: string }).workflowId, 'rollout/cli-busy');
    const second = await baton(['start', '-f', file, '--detach']);
    assert.equal(second.code, 3);
    assert.match(second.stderr, /a rollout of cli-busy is already running \(workflow rollout\/cli-busy\)/);
    await temporal.client.workflow.getHandle('rollout/cli-busy').result();
  });

  it('the lock is the infrastructure: another name over the same backend or Deployment exits 3', async () => {
    const slow = { type: 'rolling', batchSize: 1, pauseBetweenBatches: '3s' } as const;
    const first = await specFile('lock-a.yaml', fleet.spec({ version: 'v5', strategy: slow }, 'lock-a'));
    const same = await specFile('lock-b.yaml', fleet.spec({ version: 'v5', strategy: slow }, 'lock-b'));
    const started = await baton(['start', '-f', first, '--detach']);
    assert.equal(started.code, 0, started.stderr);
    const refused = await baton(['start', '-f', same, '--detach']);
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(
      refused.stderr,
      /backend web of HAProxy \S+ is being rolled out by lock-a \(workflow rollout\/lock-a\), whatever this spec calls it/,
    );
    await assert.rejects(
      temporal.client.workflow.getHandle('rollout/lock-b').describe(),
      WorkflowNotFoundError,
    );
    await temporal.client.workflow.getHandle('rollout/lock-a').result();
    // Once the first has ended, its lock is free: the other name may roll the backend.
    const next = await baton(['start', '-f', same]);
    assert.equal(next.code, 0, next.stderr);

    // A Deployment, with no worker for its task queue: the lock is taken before anything runs.
    const deployment = (name: string) =>
      specFile(`${name}.yaml`, {
        target: {
          kind: 'kubernetes',
          name,
          namespace: 'shop',
          deployment: 'web',
          container: 'app',
          image: 'registry.local/web',
        },
        version: 'v2',
        strategy: { type: 'rolling' },
      });
    const idle = { BATON_TASK_QUEUE: uniqueTaskQueue('cli-lock-idle') };
    const queued = await baton(['start', '-f', await deployment('shop-a'), '--detach'], idle);
    assert.equal(queued.code, 0, queued.stderr);
    const busy = await baton(['start', '-f', await deployment('shop-b'), '--detach'], idle);
    assert.equal(busy.code, 3, busy.stderr);
    assert.match(busy.stderr, /Deployment shop\/web is being rolled out by shop-a/);
    await temporal.client.workflow.getHandle('rollout/shop-a').terminate('test over');
    // Terminated by hand, shop-a never released its lock: the next start finds it stale and takes it.
    const taken = await baton(['start', '-f', await deployment('shop-b'), '--detach'], idle);
    assert.equal(taken.code, 0, taken.stderr);
    await temporal.client.workflow.getHandle('rollout/shop-b').terminate('test over');
  });

  it('pause, list, resume, watch and history steer and show a running rollout, recording who and why', async () => {
    const file = await specFile(
      'steer.yaml',
      fleet.spec(
        { version: 'v4', strategy: { type: 'rolling', batchSize: 1, pauseBetweenBatches: '2s' } },
        'cli-steer',
      ),
    );
    assert.equal((await baton(['start', '-f', file, '--detach'])).code, 0);

    const paused = await baton(['pause', 'cli-steer', '--reason', 'check the dashboards']);
    assert.equal(paused.code, 0, paused.stderr);
    assert.match(paused.stdout, /cli-steer: pause accepted/);
    const again = await baton(['pause', 'cli-steer']);
    assert.equal(again.code, 3);
    assert.match(
      again.stderr,
      /pause refused: the rollout is already paused: `baton resume cli-steer` continues it, `baton abort cli-steer` rolls it back/,
    );

    const listed = await baton(['list', '--phase', 'paused', '-o', 'json']);
    assert.equal(listed.code, 0, listed.stderr);
    const rollouts = JSON.parse(listed.stdout) as Array<{ target: string; phase: string; toVersion: string }>;
    assert.ok(
      rollouts.some((r) => r.target === 'cli-steer' && r.phase === 'paused' && r.toVersion === 'v4'),
      listed.stdout,
    );

    assert.equal((await baton(['resume', 'cli-steer', '--reason', 'all green'])).code, 0);
    const watched = await baton(['watch', 'cli-steer']);
    assert.equal(watched.code, 0, watched.stderr);
    assert.match(watched.stdout, /cli-steer: succeeded/);

    const history = await baton(['history', 'cli-steer']);
    assert.equal(history.code, 0, history.stderr);
    assert.match(history.stdout, /drain web-1 .* ok/);
    assert.match(history.stdout, /upgrade web-3 to v4 .* ok/);
    assert.match(history.stdout, /pause by \S+: check the dashboards\s+accepted/);
    assert.match(history.stdout, /resume by \S+: all green\s+accepted/);
    assert.match(history.stdout, /finished\s+succeeded/);

    const late = await baton(['abort', 'cli-steer']);
    assert.equal(late.code, 3);
    assert.match(
      late.stderr,
      /abort refused: the rollout has already succeeded: `baton undo cli-steer` takes it back/,
    );
  });

  it('abort rolls a running rollout back and exits the follower with 1', async () => {
    const file = await specFile(
      'abort.yaml',
      fleet.spec(
        { version: 'v5', strategy: { type: 'rolling', batchSize: 1, pauseBetweenBatches: '2s' } },
        'cli-abort',
      ),
    );
    assert.equal((await baton(['start', '-f', file, '--detach'])).code, 0);
    const following = baton(['watch', 'cli-abort']);
    const aborted = await baton(['abort', 'cli-abort', '--reason', 'wrong build']);
    assert.equal(aborted.code, 0, aborted.stderr);
    const watched = await following;
    assert.equal(watched.code, 1);
    assert.match(watched.stdout, /cli-abort: rolled-back: aborted by \S+: wrong build/);
    assert.deepEqual(Object.values(await hostVersions(fleet.dir)), ['v4', 'v4', 'v4']);
  });

  it('retry starts a rolled-back rollout again; undo takes a succeeded one back to the version before', async () => {
    const refused = await baton(['undo', 'cli-abort']);
    assert.equal(refused.code, 3);
    assert.match(refused.stderr, /did not succeed \(rolled-back\)/);

    const retried = await baton(['retry', 'cli-abort']);
    assert.equal(retried.code, 0, retried.stderr);
    assert.match(retried.stdout, /cli-abort: succeeded, 3 servers on v5/);
    assert.deepEqual(Object.values(await hostVersions(fleet.dir)), ['v5', 'v5', 'v5']);
    const again = await baton(['retry', 'cli-abort']);
    assert.equal(again.code, 3);
    assert.match(again.stderr, /succeeded \(v5\): nothing to retry/);

    const undone = await baton(['undo', 'cli-abort', '-o', 'json']);
    assert.equal(undone.code, 0, undone.stderr);
    assert.equal((JSON.parse(undone.stdout) as { toVersion: string }).toVersion, 'v4');
    assert.deepEqual(Object.values(await hostVersions(fleet.dir)), ['v4', 'v4', 'v4']);
  });

  it('promote lets a canary past its pause; watch shows the weight, then the rollout succeeds', async () => {
    const file = await specFile(
      'canary.yaml',
      fleet.spec(
        { version: 'v9', strategy: { type: 'canary', steps: [{ setWeight: 34 }, { pause: {} }] } },
        'cli-canary',
      ),
    );
    assert.equal((await baton(['start', '-f', file, '--detach'])).code, 0);
    const early = await baton(['resume', 'cli-canary']);
    assert.equal(early.code, 3);
    for (let phase = ''; phase !== 'paused'; ) {
      const status = await baton(['status', 'cli-canary', '-o', 'json']);
      phase = (JSON.parse(status.stdout) as { phase: string }).phase;
    }
    const status = JSON.parse((await baton(['status', 'cli-canary', '-o', 'json'])).stdout) as {
      canary: { weight: number; canaries: number };
      waiting: { for: string; at: string };
    };
    assert.deepEqual(status.waiting, { for: 'promote', at: 'approval at step 2' });
    assert.equal(status.canary.canaries, 2);
    const promoted = await baton(['promote', 'cli-canary', '--reason', 'dashboards green']);
    assert.equal(promoted.code, 0, promoted.stderr);
    assert.match(promoted.stdout, /cli-canary: promote accepted/);
    const watched = await baton(['watch', 'cli-canary']);
    assert.equal(watched.code, 0, watched.stderr);
    assert.match(watched.stdout, /canary: promoting, weight 100%/);
    assert.match(watched.stdout, /cli-canary: succeeded/);
    const late = await baton(['promote', 'cli-canary']);
    assert.equal(late.code, 3);
  });

  it('unknown flags exit 2 with usage', async () => {
    const { code, stderr } = await baton(['start', '-f', 'x.yaml', '--fiel']);
    assert.equal(code, 2);
    assert.match(stderr, /unknown option '--fiel'\n\(Did you mean --file\?\)/);
  });
});
