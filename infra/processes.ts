import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/** Ends a child process: SIGTERM, then SIGKILL if it hasn't exited within the grace period. */
export async function stopProcess(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Each process's state and parent, from /proc/<pid>/stat ("pid (command) state ppid ..."). */
function processTable(): Map<number, { state: string; parent: number }> {
  const table = new Map<number, { state: string; parent: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // ended while we looked
    }
    // The command may hold spaces and parentheses: the fields that follow start after its last ")".
    const [state = '', parent = ''] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    table.set(Number(entry), { state, parent: Number(parent) });
  }
  return table;
}

/**
 * Ends a child and every process under it, as Ctrl-C ends a terminal's foreground job: SIGTERM to all of them,
 * then SIGKILL to those left after the grace period. For a child whose own children may outlive it: node's test
 * runner, ended by a signal, leaves its test files' processes running.
 */
export async function stopProcessTree(child: ChildProcess, graceMs = 10_000): Promise<void> {
  const root = child.pid;
  if (root === undefined || child.exitCode !== null || child.signalCode !== null) return;
  if (!existsSync('/proc/self/stat')) return stopProcess(child, graceMs);
  const tree = [root];
  const table = processTable();
  for (let i = 0; i < tree.length; i++)
    for (const [pid, { parent }] of table) if (parent === tree[i]) tree.push(pid);
  // A zombie has ended; it only waits for its parent to collect it.
  const left = () => {
    const now = processTable();
    return tree.filter((pid) => {
      const state = now.get(pid)?.state;
      return state !== undefined && state !== 'Z' && state !== 'X';
    });
  };
  const signal = (pids: readonly number[], name: NodeJS.Signals) => {
    for (const pid of pids) sendSignal(pid, name);
  };
  signal(left(), 'SIGTERM');
  // A process may handle SIGTERM and stay (a test file's SDK shuts its workers down, then waits): it is killed.
  const killAt = Date.now() + graceMs;
  for (let pids = left(); pids.length > 0 && Date.now() < killAt + graceMs; pids = left()) {
    if (Date.now() > killAt) signal(pids, 'SIGKILL');
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

/**
 * Sends `signal` to `pid`; false when it can't reach one: no process has that pid (it ended since it was looked up,
 * which the callers take as done rather than as an error) or it is another user's. Signal 0 sends nothing and only
 * checks.
 */
export function sendSignal(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

export const signalReaches = (pid: number): boolean => sendSignal(pid, 0);

export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
