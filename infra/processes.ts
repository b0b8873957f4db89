import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

/** Ends a child process: SIGTERM, then SIGKILL if it hasn't exited within the grace period. */
export async function stopProcess(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * Ends a child started with `detached: true` and every process in its group, as Ctrl-C ends a terminal's
 * foreground job: SIGTERM to the group, then SIGKILL to what is left of it after the grace period. Returns once
 * the group is empty.
 */
export async function stopProcessGroup(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.pid === undefined) return;
  const group = -child.pid;
  const signalGroup = (signal: NodeJS.Signals | 0) => {
    try {
      process.kill(group, signal);
      return true;
    } catch {
      return false; // no process is left in the group
    }
  };
  // A process that handles SIGTERM without exiting (a worker's SDK shuts its workers down, then waits) is killed.
  const deadline = Date.now() + graceMs;
  if (!signalGroup('SIGTERM')) return;
  while (signalGroup(0)) {
    if (Date.now() > deadline) signalGroup('SIGKILL');
    await delay(50);
  }
}

/**
 * Whether a recorded pid is still the process that was recorded: alive, and its command line names `path`. The
 * kernel hands pids out again (32,768 of them by default), so a pid file can outlive its process and name another.
 */
export function runsWith(pid: number, path: string): boolean {
  if (!existsSync('/proc/self/cmdline')) return signalReaches(pid);
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(path);
  } catch {
    return false;
  }
}

export function signalReaches(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
