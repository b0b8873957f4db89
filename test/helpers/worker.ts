import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { onInterrupt } from '../../infra/interrupt';
import { delay } from '../../infra/processes';

const root = join(__dirname, '..', '..');

export interface WorkerProcess {
  readonly child: ChildProcess;
  output(): string;
  /** Kills the worker as a crash would: SIGKILL, no shutdown, activities cut off mid-way. */
  crash(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts `worker/main.ts` as its own process, as production runs it, and waits until it polls. With `shellCommand`
 * (`npm run worker`, as README.md writes it), that line runs in bash in a process group of its own, which is what
 * the signals then go to, so npm and the worker under it end together.
 */
export async function startWorkerProcess(
  env: NodeJS.ProcessEnv,
  shellCommand?: string,
): Promise<WorkerProcess> {
  const child = shellCommand
    ? spawn('bash', ['-c', shellCommand], {
        cwd: root,
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      })
    : spawn(process.execPath, ['--import', 'tsx', 'worker/main.ts'], {
        cwd: root,
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-100_000)));
  child.stderr.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-100_000)));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const end = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) {
      if (shellCommand) process.kill(-(child.pid as number), signal);
      else child.kill(signal);
    }
    await exited;
  };
  const stop = onInterrupt(() => end('SIGTERM'));
  const deadline = Date.now() + 60_000;
  while (!output.includes('Baton worker started')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await end('SIGKILL');
      await stop();
      throw new Error(`the worker did not start:\n${output}`);
    }
    await delay(100);
  }
  // Once killed, stop() finds it ended and only unregisters it.
  const crash = () => end('SIGKILL').then(stop);
  return { child, output: () => output, crash, stop };
}
