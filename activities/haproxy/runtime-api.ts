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

/** Commands this process sent over HAProxy Runtime API connections: for benchmarks that count them. */
export const runtimeApiUsage = { commands: 0, connections: 0 };

/**
 * HAProxy reads a command line into one buffer (`tune.bufsize`, 16 kB by default): a connection carries at most
 * this many short commands.
 */
const commandsPerConnection = 200;

/** One command, never two: a newline or ";" would let a value start a command of its own. */
function refuseSeparators(command: string): void {
  if (/[\n;]/.test(command))
    throw new Error(`refusing a Runtime API command with a newline or ";": ${command}`);
}

/** A client of HAProxy's Runtime API over its unix socket, one command per connection (non-interactive mode). */
export class HaproxyRuntimeApi {
  constructor(
    readonly socketPath: string,
    private readonly timeoutMs = 5_000,
  ) {}

  /** Sends one command and returns HAProxy's whole answer. */
  send(command: string): Promise<string> {
    refuseSeparators(command);
    return this.sendRaw(command);
  }

  /**
   * Sends read-only commands back to back, a few hundred per connection, and returns their answers joined: for
   * reading many servers without a connection each.
   */
  async sendAll(commands: readonly string[]): Promise<string> {
    commands.forEach(refuseSeparators);
    const answers: string[] = [];
    for (let i = 0; i < commands.length; i += commandsPerConnection)
      answers.push(await this.sendRaw(commands.slice(i, i + commandsPerConnection).join('; ')));
    return answers.join('');
  }

  private sendRaw(command: string): Promise<string> {
    runtimeApiUsage.connections++;
    runtimeApiUsage.commands += command.split('; ').length;
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
   * Sends several commands back to back, which HAProxy runs in order before it reads anything else: the way to
   * switch many servers at once. A few hundred go in one connection (see commandsPerConnection), so a thousand
   * servers take a few connections, one after the other. Throws with HAProxy's words when any answers an error.
   */
  async executeAll(commands: readonly string[]): Promise<string> {
    const answer = await this.sendAll(commands);
    const errors = answer
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && isErrorAnswer(line));
    if (errors.length > 0) throw new HaproxyCommandError(commands.join('; '), errors.join('\n'));
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

/** Rows of one or more `show stat` answers, each row keyed by the columns of the header before it. */
export function parseStatCsv(csv: string): Array<Record<string, string>> {
  const lines = csv.split('\n').filter((line) => line.trim() !== '');
  if (!lines[0]?.startsWith('# ')) throw new Error(`unexpected "show stat" answer: ${csv.slice(0, 200)}`);
  let columns: string[] = [];
  const rows: Array<Record<string, string>> = [];
  for (const line of lines) {
    if (line.startsWith('# ')) {
      columns = line.slice(2).split(',');
      continue;
    }
    const cells = line.split(',');
    const row: Record<string, string> = {};
    columns.forEach((column, i) => {
      if (column !== '') row[column] = cells[i] ?? '';
    });
    rows.push(row);
  }
  return rows;
}
