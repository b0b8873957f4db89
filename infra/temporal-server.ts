import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ConnectionOptions } from '@temporalio/client';
import { Connection } from '@temporalio/client';
import { searchAttributes } from '../workflows/messages';
import { ensureTemporalCli } from './components';
import { onInterrupt } from './interrupt';
import { freePort } from './ports';
import { delay, stopProcess } from './processes';

export interface TemporalDevServer {
  /** host:port of the frontend gRPC service. */
  readonly address: string;
  readonly namespace: string;
  readonly uiUrl: string;
  readonly pid: number;
  stop(): Promise<void>;
}

export interface TemporalDevServerOptions {
  /** SQLite file that keeps workflows across restarts of the server. */
  readonly dbFile: string;
  /** Dynamic config values (`--dynamic-config-value key=value`), values as JSON. */
  readonly dynamicConfig?: Readonly<Record<string, unknown>>;
  readonly logFile: string;
  readonly namespace?: string;
  readonly port?: number;
  readonly uiPort?: number;
  /** How long to wait for the server to answer; a cold start on a loaded 2-core machine can take a while. */
  readonly readyTimeoutMs?: number;
}

/**
 * Eager activity dispatch: an activity a workflow task schedules goes back to its worker in the reply, skipping
 * a trip through matching (about 4 ms of each step's overhead on the project's machine). Off by default in the
 * server; production clusters set the same key in their dynamic config.
 */
const defaultDynamicConfig = { 'system.enableActivityEagerExecution': true };

/**
 * SQLite in write-ahead-log mode with `synchronous=NORMAL`: a commit appends to the log without an fsync, which
 * SQLite's own default (rollback journal, FULL) pays twice per transaction; the server writes one or more
 * transactions for every step of a rollout, so that was about a third of a step's engine overhead here (p50 19 → 13
 * ms in the overhead benchmark). The file still
 * survives the server being killed at any moment (the restart tests kill it); only a power cut could lose the
 * last transactions, which a local dev server can afford.
 */
const sqlitePragmas = { journal_mode: 'wal', synchronous: 'normal' };

/** Every Baton search attribute, as `--search-attribute Name=Type` pairs for the dev server. */
function searchAttributeFlags(): string[] {
  const typeNames: Record<string, string> = {
    KEYWORD: 'Keyword',
    TEXT: 'Text',
    INT: 'Int',
    DOUBLE: 'Double',
    BOOL: 'Bool',
    DATETIME: 'Datetime',
    KEYWORD_LIST: 'KeywordList',
  };
  return Object.values(searchAttributes).flatMap((key) => [
    '--search-attribute',
    `${key.name}=${typeNames[key.type] ?? key.type}`,
  ]);
}

/**
 * Starts `temporal server start-dev` (built from the Go module proxy), with Baton's namespace and search
 * attributes, and waits until the namespace answers. The returned stop() ends the process.
 */
export async function startTemporalDevServer(options: TemporalDevServerOptions): Promise<TemporalDevServer> {
  // Besides its two ports the server binds a few more of its own choosing (its services' membership ports, its
  // HTTP API), and on a busy machine another process can hold one: it then panics at once. With ports of its own
  // choosing, the next attempt takes others.
  const attempts = options.port === undefined && options.uiPort === undefined ? 3 : 1;
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (error) {
      if (attempt >= attempts || !(error instanceof ExitedEarly)) throw error;
    }
  }
}

/** The server process ended before it answered. */
class ExitedEarly extends Error {}

async function startOnce(options: TemporalDevServerOptions): Promise<TemporalDevServer> {
  const temporal = await ensureTemporalCli();
  const namespace = options.namespace ?? 'default';
  const port = options.port ?? (await freePort());
  const uiPort = options.uiPort ?? (await freePort());
  const address = `127.0.0.1:${port}`;
  await mkdir(dirname(options.dbFile), { recursive: true });
  await mkdir(dirname(options.logFile), { recursive: true });
  const log = createWriteStream(options.logFile, { flags: 'a' });
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--ui-port',
    String(uiPort),
    '--db-filename',
    options.dbFile,
    '--namespace',
    namespace,
    '--log-format',
    'json',
    '--log-level',
    'warn',
    ...searchAttributeFlags(),
    ...Object.entries(sqlitePragmas).flatMap(([key, value]) => ['--sqlite-pragma', `${key}=${value}`]),
    ...Object.entries({ ...defaultDynamicConfig, ...options.dynamicConfig }).flatMap(([key, value]) => [
      '--dynamic-config-value',
      `${key}=${JSON.stringify(value)}`,
    ]),
  ];
  const child = spawn(temporal, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const stopChild = onInterrupt(() => stopProcess(child));
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });

  const deadline = Date.now() + (options.readyTimeoutMs ?? 90_000);
  for (;;) {
    if (exited) {
      await stopChild();
      const text = await readFile(options.logFile, 'utf8').catch(() => '');
      // A panic's first line says why; the stack after it is long.
      const panic = text.indexOf('panic');
      const tail = panic === -1 ? text.slice(-3_000) : text.slice(panic, panic + 3_000);
      throw new ExitedEarly(
        `temporal server start-dev exited before it was ready (log ${options.logFile}):\n${tail}`,
      );
    }
    if (await namespaceAnswers(address, namespace)) break;
    if (Date.now() > deadline) {
      await stopChild();
      throw new Error(
        `temporal server start-dev did not answer on ${address} within ${options.readyTimeoutMs ?? 90_000} ms (log ${options.logFile})`,
      );
    }
    await delay(250);
  }
  return {
    address,
    namespace,
    uiUrl: `http://127.0.0.1:${uiPort}`,
    pid: child.pid ?? -1,
    stop: async () => {
      await stopChild();
      log.end();
    },
  };
}

/** Whether the server at `address` answers for `namespace`: once it does, it is ready for Baton. */
export async function namespaceAnswers(
  address: string,
  namespace: string,
  tls?: ConnectionOptions['tls'],
): Promise<boolean> {
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ address, connectTimeout: 1_000, ...(tls ? { tls } : {}) });
    await connection.workflowService.describeNamespace({ namespace });
    return true;
  } catch {
    return false;
  } finally {
    await connection?.close().catch(() => undefined);
  }
}
