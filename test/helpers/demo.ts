import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { delay, sendSignal } from '../../infra/processes';
import { processesOf } from './process';

const root = join(__dirname, '..', '..');

export interface KeptDemo {
  readonly tmp: string;
  readonly stderr: () => string;
  /** Ctrl-C, as a terminal sends it: SIGINT to the demo's whole process group. */
  interrupt(): Promise<string>;
}

/**
 * Runs a `npm run demo -- … --keep` line in bash as a user does, in a process group and a temp dir of its own.
 * A demo that ends or is not kept in time is stopped, and its folder removed, before this throws: the caller has
 * nothing yet to stop.
 */
export async function keptDemo(commandLine: string, keptWithinMs = 240_000): Promise<KeptDemo> {
  const tmp = await mkdtemp(join(tmpdir(), 'baton-playground-'));
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp, NO_COLOR: '1' };
  // As a new user: no Temporal of their own, so the demo starts one.
  delete env.TEMPORAL_ADDRESS;
  delete env.NODE_TEST_CONTEXT;
  const child = spawn('bash', ['-c', commandLine], {
    cwd: root,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // npm waits for the demo under it, which exits 130 once its cleanup is done.
  const exited = new Promise<string>((resolve) =>
    child.on('exit', (code, signal) => resolve(signal ?? String(code))),
  );
  const running = () => child.exitCode === null && child.signalCode === null;
  const interrupt = async () => {
    process.kill(-(child.pid as number), 'SIGINT');
    const ended = await Promise.race([exited, sleep(60_000, 'still running', { ref: false })]);
    if (running()) process.kill(-(child.pid as number), 'SIGKILL');
    return ended;
  };
  const deadline = Date.now() + keptWithinMs;
  try {
    while (!stderr.includes('Ctrl-C stops everything.')) {
      assert.ok(running(), `the demo ended before it was kept: ${stderr}`);
      assert.ok(Date.now() < deadline, `the demo was not kept within ${keptWithinMs / 1000} s: ${stderr}`);
      await delay(250);
    }
  } catch (error) {
    await stopAll({ tmp, interrupt: () => (running() ? interrupt() : exited) });
    throw error;
  }
  return {
    tmp,
    stderr: () => stderr,
    interrupt: async () => {
      assert.ok(running(), `the demo ended before Ctrl-C: ${stderr.slice(-2_000)}`);
      return interrupt();
    },
  };
}

/** Ctrl-C to the demo, then SIGKILL to anything of its temp dir still running, and the temp dir removed. */
async function stopAll(demo: Pick<KeptDemo, 'tmp' | 'interrupt'>): Promise<string> {
  try {
    return await demo.interrupt();
  } finally {
    for (const { pid } of processesOf(demo.tmp)) sendSignal(pid, 'SIGKILL');
    await rm(demo.tmp, { recursive: true, force: true });
  }
}

/**
 * Runs `body` on a kept demo and stops the demo afterwards, whatever `body` did: Ctrl-C, then whatever is left
 * killed and its folder removed. Returns what `body` returned and what the Ctrl-C left.
 */
export async function withKeptDemo<T>(
  commandLine: string,
  body: (demo: KeptDemo) => Promise<T>,
  keptWithinMs?: number,
): Promise<{ value: T; left: Awaited<ReturnType<typeof leftAfter>> }> {
  const demo = await keptDemo(commandLine, keptWithinMs);
  let value: T;
  try {
    value = await body(demo);
  } catch (error) {
    await stopAll(demo).catch(() => undefined);
    throw error;
  }
  return { value, left: await leftAfter(demo) };
}

/** What a Ctrl-C left: processes of the demo's temp dir, and Baton folders in it. */
export async function leftAfter(demo: KeptDemo) {
  try {
    const code = await demo.interrupt();
    await delay(500);
    return {
      code,
      running: processesOf(demo.tmp).map(({ commandLine }) => commandLine),
      folders: (await readdir(demo.tmp)).filter((entry) => entry.startsWith('baton-')),
    };
  } finally {
    for (const { pid } of processesOf(demo.tmp)) sendSignal(pid, 'SIGKILL');
    await rm(demo.tmp, { recursive: true, force: true });
  }
}
