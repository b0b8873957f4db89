import type { ChildProcess } from 'node:child_process';

/** Ends a child process: SIGTERM, then SIGKILL if it hasn't exited within the grace period. */
export async function stopProcess(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
