import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { RolloutSpecInput } from '../../spec';
import type { LocalHaproxy } from '../haproxy';
import { killRecordedHaproxy, serverCheckOptions, startHaproxy } from '../haproxy';
import { freePort } from '../ports';
import type { FleetFile } from './hosts';
import { ensureDebianPackage } from '../debian';
import { startHost, startServerFarm, stopAllHosts, writeFleetFile } from './hosts';

export interface LocalFleetOptions {
  /** Folder for the fleet's state: HAProxy's config and socket, each host's pid, log and the start log. */
  readonly dir: string;
  readonly servers: number;
  /** The version every server runs at start. */
  readonly version: string;
  /** How particular versions misbehave, e.g. { 'v2-broken': { healthStatus: 500 } }. */
  readonly versions?: FleetFile['versions'];
  readonly defaults?: FleetFile['defaults'];
  readonly backend?: string;
  /**
   * All servers in one process (the server farm), upgraded through its control port with curl: for fleets of
   * hundreds, where a process each would not fit in memory, nor a Node command each per upgrade in CPU.
   */
  readonly farm?: boolean;
}

export interface LocalFleet {
  readonly dir: string;
  readonly haproxy: LocalHaproxy;
  readonly servers: ReadonlyArray<{ name: string; address: string }>;
  /** The upgrade argv of this fleet: the host supervisor, run without a shell. */
  readonly upgradeArgv: readonly string[];
  /** A rollout spec for this fleet, with the given fields on top of sensible demo defaults. */
  spec(
    overrides: Partial<RolloutSpecInput> & Pick<RolloutSpecInput, 'version'>,
    targetName?: string,
  ): RolloutSpecInput;
  /**
   * The target for strategies that create and destroy servers: no server list (Baton reads the backend), the
   * host supervisor's create and destroy commands, and the health check settings of the backend's own servers.
   */
  provisionedTarget(targetName: string): RolloutSpecInput['target'];
  stop(): Promise<void>;
}

const hostctl = join(__dirname, '..', '..', 'bin', 'hostctl.js');

/** Starts a real fleet on this machine: N demo app processes on loopback ports behind a real HAProxy. */
export async function startLocalFleet(options: LocalFleetOptions): Promise<LocalFleet> {
  const backend = options.backend ?? 'web';
  const servers = await Promise.all(
    Array.from({ length: options.servers }, async (_, i) => ({
      name: `web-${i + 1}`,
      address: `127.0.0.1:${await freePort()}`,
    })),
  );
  await writeFleetFile(options.dir, {
    servers,
    versions: options.versions ?? {},
    ...(options.defaults ? { defaults: options.defaults } : {}),
  });
  let haproxy: LocalHaproxy | undefined;
  let upgradeArgv = [process.execPath, hostctl, '--fleet', options.dir, 'upgrade', '{name}', '{version}'];
  try {
    if (options.farm) {
      const farm = await startServerFarm(options.dir, options.version);
      upgradeArgv = [
        await ensureDebianPackage('curl', 'curl', '--version'),
        '-fsS',
        '-X',
        'POST',
        `${farm}/upgrade/{name}/{version}`,
      ];
    } else await Promise.all(servers.map((server) => startHost(options.dir, server.name, options.version)));
    haproxy = await startHaproxy({
      dir: join(options.dir, 'haproxy'),
      frontendPort: await freePort(),
      backend,
      servers,
    });
  } catch (error) {
    await stopAllHosts(options.dir);
    throw error;
  }
  const lb = haproxy;
  return {
    dir: options.dir,
    haproxy: lb,
    servers,
    upgradeArgv,
    spec: (overrides, targetName = 'demo-web') => ({
      target: {
        kind: 'fleet',
        name: targetName,
        loadBalancer: { haproxy: { socket: lb.socket, backend } },
        servers: servers.map((s) => ({ ...s })),
        upgrade: { argv: [...upgradeArgv], timeout: '60s' },
      },
      strategy: { type: 'rolling', batchSize: 2 },
      drain: { timeout: '30s', pollInterval: '100ms' },
      verify: { http: { passes: 3, interval: '200ms', timeout: '10s' } },
      ...overrides,
    }),
    provisionedTarget: (targetName) => ({
      kind: 'fleet',
      name: targetName,
      loadBalancer: { haproxy: { socket: lb.socket, backend } },
      provision: {
        create: {
          argv: [process.execPath, hostctl, '--fleet', options.dir, 'create', '{name}', '{version}'],
        },
        destroy: { argv: [process.execPath, hostctl, '--fleet', options.dir, 'destroy', '{name}'] },
        serverOptions: [...serverCheckOptions],
      },
    }),
    stop: async () => {
      await lb.stop();
      await stopAllHosts(options.dir);
    },
  };
}

/**
 * Ends every fleet under a folder: each host's process and each HAProxy, by the pids they recorded. The test
 * runner calls it last, so a test that crashed or was killed leaves no process behind. Returns how many fleets
 * still had a process running.
 */
export async function sweepFleets(root: string): Promise<number> {
  if (!existsSync(root)) return 0;
  let swept = 0;
  for (const entry of readdirSync(root)) {
    const dir = join(root, entry);
    if (!existsSync(join(dir, 'fleet.json'))) continue;
    const hostsRan = (await stopAllHosts(dir)) > 0;
    const haproxyRan = killRecordedHaproxy(join(dir, 'haproxy'));
    if (hostsRan || haproxyRan) swept++;
  }
  return swept;
}
