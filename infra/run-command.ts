import { spawn } from 'node:child_process';
import { say } from './cache';

export interface RunOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Shown while the command runs, with the elapsed time every 30 s, for steps that take minutes. */
  readonly label: string;
  /** Says nothing while it runs: for quick steps, named only if they fail. */
  readonly quiet?: boolean;
}

/** Runs a build command, quietly, reporting progress on long steps; fails with the end of its output. */
export function runCommand(argv: readonly string[], options: RunOptions): Promise<string> {
  const [program, ...args] = argv;
  if (!program) throw new Error('empty argv');
  const started = Date.now();
  if (!options.quiet) say(`${options.label}…`);
  const ticker = setInterval(
    () => say(`${options.label}: still working (${Math.round((Date.now() - started) / 1000)} s)`),
    30_000,
  );
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-64_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (error: NodeJS.ErrnoException) => {
      clearInterval(ticker);
      reject(
        new Error(
          error.code === 'ENOENT'
            ? `${options.label}: "${program}" is not installed`
            : `${options.label}: ${error.message}`,
        ),
      );
    });
    child.on('close', (code) => {
      clearInterval(ticker);
      if (code === 0) resolve(output);
      else reject(new Error(`${options.label} failed (exit ${code}):\n${output.slice(-4_000)}`));
    });
  });
}
