import { createConnection } from 'node:net';

/** HAProxy answered a Runtime API command with an error (it has no status codes, only text). */
export class HaproxyCommandError extends Error {
  override readonly name = 'HaproxyCommandError';
  constructor(
    readonly command: string,
    readonly response: string,
  ) {
    super(`HAProxy rejected "${command}": ${response.trim() || '(empty answer)'}`);
  }
}

/** The admin socket could not be reached at all. */
export class HaproxyUnreachableError extends Error {
  override readonly name = 'HaproxyUnreachableError';
}

/**
 * HAProxy's Runtime API has no status codes: a command that changes state answers nothing on success, or one of a
 * few notices, and prints its error as text otherwise ("No such server.", "Empty weight string ...", "Unknown
 * command ..."). So any other answer is an error, whatever its wording.
 */
const successNotices = [/^New server registered\./, /^Server deleted\./, /^Done\./];

export function isErrorAnswer(answer: string): boolean {
  const trimmed = answer.trim();
  return trimmed !== '' && !successNotices.some((notice) => notice.test(trimmed));
}

/** A client of HAProxy's Runtime API over its unix socket, one command per connection (non-interactive mode). */
export class HaproxyRuntimeApi {
  constructor(
    readonly socketPath: string,
    private readonly timeoutMs = 5_000,
  ) {}

  /** Sends one command and returns HAProxy's whole answer. */
  send(command: string): Promise<string> {
    if (/[\n;]/.test(command))
      throw new Error(`refusing a Runtime API command with a newline or ";": ${command}`);
    return this.sendRaw(command);
  }

  private sendRaw(command: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = createConnection(this.socketPath);
      const chunks: Buffer[] = [];
      socket.setTimeout(this.timeoutMs, () => {
        socket.destroy(
          new HaproxyUnreachableError(
            `HAProxy socket ${this.socketPath} did not answer "${command}" within ${this.timeoutMs} ms`,
          ),
        );
      });
      socket.on('connect', () => socket.end(`${command}\n`));
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('error', (error: NodeJS.ErrnoException) => {
        reject(
          error instanceof HaproxyUnreachableError
            ? error
            : new HaproxyUnreachableError(
                `HAProxy socket ${this.socketPath} is unreachable: ${error.code ?? error.message}`,
              ),
        );
      });
      socket.on('close', (hadError) => {
        if (!hadError) resolve(Buffer.concat(chunks).toString('utf8'));
      });
    });
  }

  /**
   * Sends several commands in one connection, which HAProxy runs back to back before it reads anything else:
   * the way to switch many servers at once. Throws with HAProxy's words when any of them answers an error.
   */
  async executeAll(commands: readonly string[]): Promise<string> {
    for (const command of commands)
      if (/[\n;]/.test(command))
        throw new Error(`refusing a Runtime API command with a newline or ";": ${command}`);
    const joined = commands.join('; ');
    const answer = await this.sendRaw(joined);
    const errors = answer
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && isErrorAnswer(line));
    if (errors.length > 0) throw new HaproxyCommandError(joined, errors.join('\n'));
    return answer;
  }

  /** Sends a command that changes state; throws with HAProxy's own words when it answers an error. */
  async execute(command: string): Promise<string> {
    const answer = await this.send(command);
    if (isErrorAnswer(answer)) throw new HaproxyCommandError(command, answer);
    return answer;
  }

  /** `show stat` as rows keyed by column name (pxname, svname, scur, qcur, status, weight, ...). */
  async showStat(): Promise<Array<Record<string, string>>> {
    const answer = await this.send('show stat');
    if (!answer.startsWith('# ')) throw new HaproxyCommandError('show stat', answer);
    return parseStatCsv(answer);
  }
}

export function parseStatCsv(csv: string): Array<Record<string, string>> {
  const lines = csv.split('\n').filter((line) => line.trim() !== '');
  const header = lines.shift();
  if (!header?.startsWith('# ')) throw new Error(`unexpected "show stat" answer: ${csv.slice(0, 200)}`);
  const columns = header.slice(2).split(',');
  return lines.map((line) => {
    const cells = line.split(',');
    const row: Record<string, string> = {};
    columns.forEach((column, i) => {
      if (column !== '') row[column] = cells[i] ?? '';
    });
    return row;
  });
}
