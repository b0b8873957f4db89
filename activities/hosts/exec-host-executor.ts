import { execFile } from 'node:child_process';
import type { CommandResult, HostExecutor } from '../ports';

/** Keeps failure messages readable: the end of a command's output is where its error usually is. */
export function tail(text: string, maxChars = 2_000): string {
  const trimmed = text.trim();
  return trimmed.length <= maxChars ? trimmed : `…${trimmed.slice(-maxChars)}`;
}

export class CommandFailedError extends Error {
  override readonly name = 'CommandFailedError';
  constructor(
    readonly argv: readonly string[],
    readonly reason: string,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    const output = [tail(stderr), tail(stdout)].filter(Boolean).join('\n');
    super(`${argv.join(' ')} ${reason}${output ? `:\n${output}` : ''}`);
  }
}

/** Runs commands on this machine with execFile: argv goes to the program as it is, no shell ever parses it. */
export class ExecHostExecutor implements HostExecutor {
  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}

  run(argv: readonly string[], options: { timeoutMs: number; signal?: AbortSignal }): Promise<CommandResult> {
    const [program, ...args] = argv;
    if (!program) return Promise.reject(new Error('empty argv'));
    return new Promise((resolve, reject) => {
      execFile(
        program,
        args,
        {
          timeout: options.timeoutMs,
          signal: options.signal,
          maxBuffer: 8 * 1024 * 1024,
          env: this.env,
          shell: false,
        },
        (error, stdout, stderr) => {
          if (!error) return resolve({ stdout, stderr });
          const failure = error as {
            killed?: boolean;
            signal?: string | null;
            code?: number | string | null;
          };
          const code = failure.code;
          let reason: string;
          if (failure.killed) reason = `timed out after ${options.timeoutMs} ms`;
          else if (typeof code === 'number') reason = `exited with code ${code}`;
          else if (code === 'ENOENT') reason = 'could not start: program not found';
          else reason = `failed: ${failure.signal ?? code ?? error.message}`;
          reject(new CommandFailedError(argv, reason, stdout, stderr));
        },
      );
    });
  }
}
