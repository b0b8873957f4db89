import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { delay, sendSignal } from '../../infra/processes';
import { processesOf } from '../helpers/process';

const root = join(__dirname, '..', '..');

/**
 * Runs `argv` (a script of this repository, under tsx) with its temp dir in a folder of its own, sends SIGTERM
 * once `ready` says so, and returns how it ended, which of its processes still run, and which of its folders are
 * left in its temp dir.
 */
async function interrupt(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  ready: (stderr: string, running: ReturnType<typeof processesOf>) => boolean,
) {
  const tmp = await mkdtemp(join(tmpdir(), 'baton-interrupt-'));
  try {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env, TMPDIR: tmp };
    // Set by node's test runner for its test files; a test run started from one would skip its files.
    delete childEnv.NODE_TEST_CONTEXT;
    const child = spawn(process.execPath, ['--import', 'tsx', ...argv], {
      cwd: root,
      env: childEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const deadline = Date.now() + 120_000;
    while (!ready(stderr, processesOf(tmp))) {
      assert.ok(Date.now() < deadline, `${argv.join(' ')} did not get going: ${stderr}`);
      assert.equal(child.exitCode, null, `${argv.join(' ')} ended before it was interrupted: ${stderr}`);
      await delay(200);
    }
    const runningBefore = processesOf(tmp).length;
    child.kill('SIGTERM');
    // The SDK's own SIGTERM handler shuts a worker down, and a bench waiting on its rollout would then wait forever.
    const code = await Promise.race([
      exited,
      setTimeout(60_000, 'still running a minute later', { ref: false }),
    ]);
    if (child.exitCode === null) child.kill('SIGKILL');
    // tsx keeps its compile cache in the temp dir too; only Baton's folders count.
    const left = (await readdir(tmp)).filter((entry) => entry.startsWith('baton-'));
    const runningAfter = processesOf(tmp).map(({ commandLine }) => commandLine);
    return { code, runningBefore, runningAfter, left, stderr };
  } finally {
    for (const { pid } of processesOf(tmp)) sendSignal(pid, 'SIGKILL');
    await rm(tmp, { recursive: true, force: true });
  }
}

describe('a benchmark ended by SIGTERM', () => {
  it('stops its Temporal server and removes its scratch folder while it runs', async () => {
    let seenAt = 0;
    const ended = await interrupt(['bench/run.ts', 'overhead'], { BATON_BENCH_SIZES: '10' }, (_, running) => {
      // The server is up; a few seconds more and the worker is rolling out the first of three fleets of 10, light
      // enough for the test files that run beside this one.
      const server = running.some(({ commandLine }) => commandLine.includes('start-dev'));
      if (server && seenAt === 0) seenAt = Date.now();
      return seenAt > 0 && Date.now() - seenAt > 8_000;
    });
    assert.ok(ended.runningBefore >= 2, 'the bench and its Temporal server ran before the signal');
    assert.equal(ended.code, 143, ended.stderr);
    assert.deepEqual(ended.runningAfter, [], 'no process of the bench outlives it');
    assert.deepEqual(ended.left, [], 'its scratch folder is gone');
  });

  it("also ends the fleet's hosts and HAProxy", async () => {
    const ended = await interrupt(['bench/run.ts', 'zero-drop'], {}, (stderr) =>
      stderr.includes('requests/s through HAProxy'),
    );
    // The bench, its server, HAProxy and nine hosts.
    assert.ok(ended.runningBefore >= 12, `${ended.runningBefore} processes ran before the signal`);
    assert.equal(ended.code, 143, ended.stderr);
    assert.deepEqual(ended.runningAfter, [], 'no process of the bench outlives it');
    assert.deepEqual(ended.left, [], 'its scratch folder is gone');
  });
});

describe('a test run ended by SIGTERM', () => {
  it('ends its test files, sweeps their fleets and stops its Temporal server', async () => {
    const ended = await interrupt(['test/run.ts', 'integration/fleet-rolling'], {}, (_, running) =>
      // A test fleet's HAProxy is up: the test files are under way.
      running.some(({ commandLine }) => commandLine.includes('haproxy.cfg')),
    );
    assert.equal(ended.code, 143, ended.stderr);
    assert.deepEqual(ended.runningAfter, [], 'no process of the run outlives it');
    assert.deepEqual(ended.left, [], 'its folder is gone');
  });
});
