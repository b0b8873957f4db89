import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface Finished {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command as a user would, to its end, and returns its exit code and output. */
export function runToEnd(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Finished> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** This machine's processes (but this one) whose command line and environment pass `matches`. */
export function processesWhere(
  matches: (process: { commandLine: string; environment: string }) => boolean,
): Array<{ pid: number; commandLine: string }> {
  const read = (path: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return ''; // ended while we looked
    }
  };
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)
    .map((pid) => ({
      pid: Number(pid),
      commandLine: read(`/proc/${pid}/cmdline`).replaceAll('\0', ' '),
      environment: read(`/proc/${pid}/environ`),
    }))
    .filter(matches)
    .map(({ pid, commandLine }) => ({ pid, commandLine }));
}

/**
 * This machine's processes that a run with TMPDIR=`dir` started, at any depth: they name `dir` in their command
 * line or carry it in their environment.
 */
export function processesOf(dir: string): Array<{ pid: number; commandLine: string }> {
  return processesWhere(
    ({ commandLine, environment }) => commandLine.includes(dir) || environment.includes(`TMPDIR=${dir}\0`),
  );
}
