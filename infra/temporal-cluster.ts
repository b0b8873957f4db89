import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { ensureComponent } from './cache';
import { goInstalled } from './go-install';
import { onInterrupt } from './interrupt';
import { freePort } from './ports';
import type { LocalPostgres } from './postgres';
import { startPostgres } from './postgres';
import { delay, stopProcess } from './processes';
import { runCommand } from './run-command';
import { namespaceAnswers } from './temporal-server';
import type { TestPki } from './tls';
import { makeTestPki } from './tls';

/**
 * The Temporal server itself, as production runs it (not the CLI's dev server). v1.32.1: v1.32.2 asks for Go
 * 1.26.10, newer than this machine's, and `go install` must not fetch a toolchain.
 */
export const temporalServerVersion = 'v1.32.1';

export interface TemporalServerBinaries {
  readonly server: string;
  /** temporal-sql-tool: creates the databases and applies the schema, which it carries embedded. */
  readonly sqlTool: string;
}

export async function ensureTemporalServer(): Promise<TemporalServerBinaries> {
  const component = goInstalled({
    name: 'temporal-server',
    module: 'go.temporal.io/server/cmd/server',
    version: temporalServerVersion,
    binary: 'server',
    extraPackages: ['go.temporal.io/server/cmd/tools/sql'],
  });
  const dir = await ensureComponent({ ...component, files: ['bin/server', 'bin/sql'] });
  return { server: join(dir, 'bin', 'server'), sqlTool: join(dir, 'bin', 'sql') };
}

export interface TemporalCluster {
  /** host:port of the frontend, which takes only mutual TLS. */
  readonly address: string;
  readonly pki: TestPki;
  /**
   * What a worker, the `baton` CLI and the `temporal` CLI connect with, as users set it: the address and the
   * TEMPORAL_TLS_* files. No namespace: the caller names its own.
   */
  readonly env: Readonly<Record<string, string>>;
  readonly postgres: LocalPostgres;
  readonly logFile: string;
  /** The server's pid, while it runs. */
  pid(): number | undefined;
  /** SIGKILL: the process ends mid-write, as on a crashed host. */
  kill(): Promise<void>;
  /** Starts the server again on the same ports and database, and waits until its frontend answers. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

const databases = { temporal: 'temporal', visibility: 'temporal_visibility' } as const;

/**
 * A Temporal cluster shaped like production on this machine: the server built from the Go module proxy, its four
 * services in one process, on a PostgreSQL server of its own (Debian's), the frontend behind mutual TLS with
 * certificates from a scratch CA, and TLS between the services. Namespaces and search attributes are left to the
 * caller, as an operator creates them.
 */
export async function startTemporalCluster(options: { dir: string }): Promise<TemporalCluster> {
  const binaries = await ensureTemporalServer();
  await mkdir(options.dir, { recursive: true });
  const pki = await makeTestPki(options.dir);
  const postgres = await startPostgres({ user: 'temporal' });
  try {
    for (const [database, schema] of [
      [databases.temporal, 'postgresql/v12/temporal'],
      [databases.visibility, 'postgresql/v12/visibility'],
    ] as const) {
      const sql = [
        binaries.sqlTool,
        '--plugin',
        'postgres12',
        '--endpoint',
        '127.0.0.1',
        '--port',
        String(postgres.port),
        '--user',
        postgres.user,
        '--database',
        database,
      ];
      await runCommand([...sql, 'create-database'], { label: `create database ${database}`, quiet: true });
      await runCommand([...sql, 'setup-schema', '--version', '0.0'], { label: 'setup-schema', quiet: true });
      await runCommand([...sql, 'update-schema', '--schema-name', schema], {
        label: `update-schema ${schema}`,
        quiet: true,
      });
    }
    // Membership ports go in a smallint column of the cluster's database.
    const ports = {
      frontend: await freePort(),
      frontendHttp: await freePort(),
      history: await freePort(),
      matching: await freePort(),
      worker: await freePort(),
      frontendMembership: await freePort(),
      historyMembership: await freePort(),
      matchingMembership: await freePort(),
      workerMembership: await freePort(),
    };
    const address = `127.0.0.1:${ports.frontend}`;
    const dynamicConfigFile = join(options.dir, 'dynamic-config.yaml');
    await writeFile(dynamicConfigFile, toYaml(dynamicConfig));
    const configFile = join(options.dir, 'temporal.yaml');
    await writeFile(configFile, toYaml(serverConfig({ pki, postgres, ports, address, dynamicConfigFile })));
    const logFile = join(options.dir, 'temporal-server.log');
    const env = {
      TEMPORAL_ADDRESS: address,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.ca,
      TEMPORAL_TLS_CLIENT_CERT_PATH: pki.client.cert,
      TEMPORAL_TLS_CLIENT_KEY_PATH: pki.client.key,
      TEMPORAL_TLS_SERVER_NAME: pki.serverName,
    };

    let child: ChildProcess | undefined;
    const log = createWriteStream(logFile, { flags: 'a' });
    const start = async () => {
      const started = spawn(binaries.server, ['--config-file', configFile, '--allow-no-auth', 'start'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child = started;
      started.stdout.pipe(log, { end: false });
      started.stderr.pipe(log, { end: false });
      const deadline = Date.now() + 120_000;
      // The system namespace answers once the frontend and the services behind it do.
      while (!(await namespaceAnswers(address, 'temporal-system', await clientTls(pki)))) {
        if (started.exitCode !== null || started.signalCode !== null) {
          const text = await readFile(logFile, 'utf8').catch(() => '');
          throw new Error(
            `the Temporal server exited before it answered (log ${logFile}):\n${text.slice(-3_000)}`,
          );
        }
        if (Date.now() > deadline)
          throw new Error(`the Temporal server did not answer within 120 s (log ${logFile})`);
        await delay(500);
      }
    };
    const stopServer = async () => {
      if (child) await stopProcess(child);
    };
    const unregister = onInterrupt(async () => {
      await stopServer();
      await postgres.stop();
      log.end();
    });
    try {
      await start();
    } catch (error) {
      await unregister();
      throw error;
    }
    return {
      address,
      pki,
      env,
      postgres,
      logFile,
      pid: () => (child && child.exitCode === null && child.signalCode === null ? child.pid : undefined),
      kill: async () => {
        const running = child;
        if (!running || running.exitCode !== null || running.signalCode !== null) return;
        const exited = new Promise((resolve) => running.once('exit', resolve));
        running.kill('SIGKILL');
        await exited;
      },
      start,
      stop: unregister,
    };
  } catch (error) {
    await postgres.stop();
    throw error;
  }
}

/**
 * The dev server's defaults that Baton leans on: eager activities (see temporal-server.ts), and search attributes
 * visible to the next query as soon as they are created rather than after the cache's minute.
 */
const dynamicConfig = {
  'system.enableActivityEagerExecution': [{ value: true }],
  'system.forceSearchAttributesCacheRefreshOnRead': [{ value: true }],
};

function serverConfig(options: {
  pki: TestPki;
  postgres: LocalPostgres;
  ports: Record<string, number>;
  address: string;
  dynamicConfigFile: string;
}) {
  const { pki, postgres, ports } = options;
  const store = (databaseName: string, maxConns: number) => ({
    sql: {
      pluginName: 'postgres12',
      databaseName,
      connectAddr: postgres.address,
      connectProtocol: 'tcp',
      user: postgres.user,
      password: '',
      maxConns,
      maxIdleConns: maxConns,
      maxConnLifetime: '1h',
    },
  });
  const serverTls = {
    certFile: pki.server.cert,
    keyFile: pki.server.key,
    requireClientAuth: true,
    clientCaFiles: [pki.ca],
  };
  const clientTls = { serverName: pki.serverName, rootCaFiles: [pki.ca] };
  const service = (grpcPort: number, membershipPort: number, httpPort?: number) => ({
    rpc: { grpcPort, membershipPort, bindOnLocalHost: true, ...(httpPort ? { httpPort } : {}) },
  });
  return {
    log: { stdout: true, level: 'warn', format: 'json' },
    persistence: {
      defaultStore: 'default',
      visibilityStore: 'visibility',
      numHistoryShards: 4,
      datastores: { default: store(databases.temporal, 20), visibility: store(databases.visibility, 10) },
    },
    global: {
      membership: { maxJoinDuration: '30s', broadcastAddress: '127.0.0.1' },
      tls: {
        internode: { server: serverTls, client: clientTls },
        frontend: { server: serverTls, client: clientTls },
        systemWorker: { certFile: pki.server.cert, keyFile: pki.server.key, client: clientTls },
      },
    },
    services: {
      frontend: service(ports.frontend ?? 0, ports.frontendMembership ?? 0, ports.frontendHttp),
      history: service(ports.history ?? 0, ports.historyMembership ?? 0),
      matching: service(ports.matching ?? 0, ports.matchingMembership ?? 0),
      worker: service(ports.worker ?? 0, ports.workerMembership ?? 0),
    },
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: {
        active: {
          enabled: true,
          initialFailoverVersion: 1,
          rpcName: 'frontend',
          rpcAddress: options.address,
        },
      },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    dynamicConfigClient: { filepath: options.dynamicConfigFile, pollInterval: '10s' },
  };
}

/** What a client with the test's certificate connects with, as `Connection.connect` takes it. */
export async function clientTls(pki: TestPki) {
  return {
    serverNameOverride: pki.serverName,
    serverRootCACertificate: await readFile(pki.ca),
    clientCertPair: { crt: await readFile(pki.client.cert), key: await readFile(pki.client.key) },
  };
}
