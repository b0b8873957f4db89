import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { delay } from '../../infra/processes';

const root = join(__dirname, '..', '..');

/** The pids of this machine's processes whose command line names `dir`: what a run under it left running. */
function processesNaming(dir: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir);
      } catch {
        return false; // ended while we looked
      }
    })
    .map(Number);
}

/**
 * Runs `npm run bench -- <name>` with its temp dir in a folder of its own, sends SIGTERM once `ready` says so,
 * and returns how it ended, which of its processes still run, and which of its folders are left in its temp dir.
 */
async function interruptBench(
  name: string,
  env: NodeJS.ProcessEnv,
  ready: (stderr: string, running: number[]) => boolean,
) {
  const tmp = await mkdtemp(join(tmpdir(), 'baton-interrupt-'));
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', name], {
      cwd: root,
      env: { ...process.env, ...env, TMPDIR: tmp },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const deadline = Date.now() + 120_000;
    while (!ready(stderr, processesNaming(tmp))) {
      assert.ok(Date.now() < deadline, `the bench did not get going: ${stderr}`);
      assert.equal(child.exitCode, null, `the bench ended before it was interrupted: ${stderr}`);
      await delay(200);
    }
    const runningBefore = processesNaming(tmp).length;
    child.kill('SIGTERM');
    // The SDK's own SIGTERM handler shuts the worker down, and a bench waiting on its rollout would then wait forever.
    const code = await Promise.race([exited, delay(60_000).then(() => 'still running a minute later')]);
    if (child.exitCode === null) child.kill('SIGKILL');
    // tsx keeps its compile cache in the temp dir too; only Baton's folders count.
    const left = (await readdir(tmp)).filter((entry) => entry.startsWith('baton-'));
    return { code, runningBefore, runningAfter: processesNaming(tmp), left, stderr };
  } finally {
    for (const pid of processesNaming(tmp)) process.kill(pid, 'SIGKILL');
    await rm(tmp, { recursive: true, force: true });
  }
}

describe('a benchmark ended by SIGTERM', () => {
  it('stops its Temporal server and removes its scratch folder while it runs', async () => {
    let seenAt = 0;
    const ended = await interruptBench('overhead', { BATON_BENCH_SIZES: '10' }, (_, running) => {
      // The server is up; a few seconds more and the worker is rolling out the first of three fleets of 10, light
      // enough for the test files that run beside this one.
      if (running.length > 0 && seenAt === 0) seenAt = Date.now();
      return seenAt > 0 && Date.now() - seenAt > 8_000;
    });
    assert.ok(ended.runningBefore >= 1, 'the Temporal server ran before the signal');
    assert.equal(ended.code, 143, ended.stderr);
    assert.deepEqual(ended.runningAfter, [], 'no process of the bench outlives it');
    assert.deepEqual(ended.left, [], 'its scratch folder is gone');
  });

  it("also ends the fleet's hosts and HAProxy", async () => {
    const ended = await interruptBench('zero-drop', {}, (stderr) =>
      stderr.includes('requests/s through HAProxy'),
    );
    // The server, HAProxy and nine hosts.
    assert.ok(ended.runningBefore >= 11, `${ended.runningBefore} processes ran before the signal`);
    assert.equal(ended.code, 143, ended.stderr);
    assert.deepEqual(ended.runningAfter, [], 'no process of the bench outlives it');
    assert.deepEqual(ended.left, [], 'its scratch folder is gone');
  });
});
