import { spawn } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { withFileLock } from '../lock';
import { freePort } from '../ports';
import { delay, runsWith, sendSignal, signalReaches } from '../processes';

/**
 * The local "hosts" of the demo fleet: each server is a real process of the demo app on its own loopback port,
 * recorded in a fleet folder. Upgrading a host really stops the old version's process (which finishes its
 * requests) and starts the new version's at the same address.
 */
const versionBehaviour = z.strictObject({
  latencyMs: z.number().int().min(0).default(0),
  errorRate: z.number().min(0).max(1).default(0),
  healthStatus: z.number().int().min(100).max(599).default(200),
  /** Time from process start to listening, as a real service's boot. */
  startupMs: z.number().int().min(0).default(0),
});

export const fleetFile = z.strictObject({
  servers: z.array(z.strictObject({ name: z.string(), address: z.string() })),
  /** How each version behaves; a version not listed behaves well with `defaults`. */
  versions: z.record(z.string(), versionBehaviour).default({}),
  defaults: versionBehaviour.prefault({}),
});
export type FleetFile = z.input<typeof fleetFile>;

const hostState = z.object({ pid: z.number().int(), version: z.string() });

const repoRoot = join(__dirname, '..', '..');
const appPath = join(repoRoot, 'infra', 'demo-app', 'server.ts');

// Absolute: a host's command line carries it, and tells the host apart from a process that got its pid since.
export const startsLogPath = (fleetDir: string) => resolve(fleetDir, 'starts.log');
const statePath = (fleetDir: string, name: string) => join(fleetDir, 'hosts', `${name}.json`);

export async function readFleetFile(fleetDir: string) {
  return fleetFile.parse(JSON.parse(await readFile(join(fleetDir, 'fleet.json'), 'utf8')));
}

export async function writeFleetFile(fleetDir: string, fleet: FleetFile): Promise<void> {
  await mkdir(join(fleetDir, 'hosts'), { recursive: true });
  await writeFile(join(fleetDir, 'fleet.json'), `${JSON.stringify(fleet, null, 2)}\n`);
}

async function readHost(fleetDir: string, name: string) {
  const path = statePath(fleetDir, name);
  if (!existsSync(path)) return undefined;
  const state = hostState.parse(JSON.parse(await readFile(path, 'utf8')));
  // Its command line names the fleet's starts log, which no other process's does.
  return runsWith(state.pid, startsLogPath(fleetDir)) ? state : undefined;
}

function portAccepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Stops a host's process gracefully: SIGTERM, wait for it to finish its requests, SIGKILL past the grace time.
 * False when it was not running.
 */
export async function stopHost(fleetDir: string, name: string, graceMs = 30_000): Promise<boolean> {
  const state = await readHost(fleetDir, name);
  if (!state) return false;
  // It may end between a check and a signal, which then finds no process: that is the stop we wanted.
  sendSignal(state.pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (runsWith(state.pid, startsLogPath(fleetDir))) {
    if (Date.now() > deadline) sendSignal(state.pid, 'SIGKILL');
    await delay(20);
  }
  return true;
}

/** Starts a TypeScript program of this repository as a process of its own, its output appended to `logFile`. */
function spawnDetached(script: string, args: readonly string[], logFile: string): number {
  const log = openSync(logFile, 'a');
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: repoRoot,
    detached: true,
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  child.unref();
  if (child.pid === undefined) throw new Error(`could not start ${script}`);
  return child.pid;
}

/** Waits until host:port accepts connections; fails when the process `pid` ended first, or past `timeoutMs`. */
async function untilListening(
  host: string,
  port: number,
  pid: number,
  timeoutMs: number,
  what: string,
  logFile: string,
  fleetDir?: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // Another process may listen on the port (it took it while the host was down): only the host's own word, its
  // line in the starts log, says that it is the one listening.
  const listening = async () =>
    fleetDir === undefined
      ? portAccepts(host, port)
      : (await countStarts(fleetDir)).some((s) => s.pid === pid);
  while (!(await listening())) {
    // Not runsWith: until the child has exec'd, its command line is still this process's.
    if (!signalReaches(pid)) throw new Error(`${what} exited at start; see ${logFile}`);
    if (Date.now() > deadline)
      throw new Error(`${what} did not listen on ${host}:${port} within ${timeoutMs / 1000} s`);
    await delay(25);
  }
}

/** Starts a host on a version, unless it already runs that version (so a retried upgrade is harmless). */
export async function startHost(
  fleetDir: string,
  name: string,
  version: string,
): Promise<'started' | 'already running'> {
  const fleet = await readFleetFile(fleetDir);
  const server = fleet.servers.find((s) => s.name === name);
  if (!server) throw new Error(`no host named ${name} in ${fleetDir}/fleet.json`);
  const current = await readHost(fleetDir, name);
  if (current?.version === version) return 'already running';
  if (current) await stopHost(fleetDir, name);
  const [host = '127.0.0.1', port = ''] = server.address.split(':');
  const behaviour = fleet.versions[version] ?? fleet.defaults;
  const logFile = join(fleetDir, 'hosts', `${name}.log`);
  const pid = spawnDetached(
    appPath,
    [
      '--name',
      name,
      '--host',
      host,
      '--port',
      port,
      '--version',
      version,
      '--latency-ms',
      String(behaviour.latencyMs),
      '--error-rate',
      String(behaviour.errorRate),
      '--health-status',
      String(behaviour.healthStatus),
      '--startup-ms',
      String(behaviour.startupMs),
      '--starts-log',
      startsLogPath(fleetDir),
    ],
    logFile,
  );
  await writeFile(statePath(fleetDir, name), JSON.stringify({ pid, version }));
  await untilListening(host, Number(port), pid, 30_000, `${name} ${version}`, logFile, fleetDir);
  return 'started';
}

/**
 * Starts every server of the fleet in one process (see server-farm.ts) on `version`, and returns the base URL of
 * its control port once every server listens. Stopping any of its hosts (stopHost, stopAllHosts) ends them all.
 */
export async function startServerFarm(fleetDir: string, version: string): Promise<string> {
  const controlPort = await freePort();
  const logFile = join(fleetDir, 'farm.log');
  const pid = spawnDetached(
    join(repoRoot, 'infra', 'fleet', 'server-farm.ts'),
    [
      '--fleet',
      resolve(fleetDir),
      '--version',
      version,
      '--control-port',
      String(controlPort),
      '--starts-log',
      startsLogPath(fleetDir),
    ],
    logFile,
  );
  await untilListening('127.0.0.1', controlPort, pid, 60_000, 'the server farm', logFile);
  return `http://127.0.0.1:${controlPort}`;
}

/** The running version of every host, as recorded by this supervisor. */
export async function hostVersions(fleetDir: string): Promise<Record<string, string | undefined>> {
  const fleet = await readFleetFile(fleetDir);
  const entries = await Promise.all(
    fleet.servers.map(async (s) => [s.name, (await readHost(fleetDir, s.name))?.version] as const),
  );
  return Object.fromEntries(entries);
}

const commandsLogPath = (fleetDir: string) => resolve(fleetDir, 'commands.log');

/** Notes a run of the host supervisor's command, as a user's own upgrade script would log itself. */
export async function logCommand(fleetDir: string, command: string, name: string, version?: string) {
  await appendFile(commandsLogPath(fleetDir), `${JSON.stringify({ command, name, version })}\n`);
}

/** Every upgrade command run against the fleet, in order: what a non-idempotent command would have done. */
export async function upgradeCommands(fleetDir: string): Promise<Array<{ name: string; version: string }>> {
  const text = await readFile(commandsLogPath(fleetDir), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { command: string; name: string; version: string })
    .filter((entry) => entry.command === 'upgrade');
}

/** How many times each host was started on each version, from the app's own start log. */
export async function countStarts(
  fleetDir: string,
): Promise<Array<{ name: string; version: string; pid: number }>> {
  const text = await readFile(startsLogPath(fleetDir), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { name: string; version: string; pid: number });
}

/** Stops every host of the fleet; how many were running. */
export async function stopAllHosts(fleetDir: string): Promise<number> {
  const fleet = await readFleetFile(fleetDir);
  const stopped = await Promise.all(fleet.servers.map((s) => stopHost(fleetDir, s.name, 5_000)));
  return stopped.filter(Boolean).length;
}

/**
 * Creates a host, as a cloud creates an instance: a new entry in the fleet on a free port, started on a version.
 * Idempotent: a host that exists is started on the version if it is not running it, and keeps its address.
 */
export async function createHost(fleetDir: string, name: string, version: string): Promise<string> {
  const address = await withFileLock(join(fleetDir, 'fleet.lock'), async () => {
    const fleet = await readFleetFile(fleetDir);
    const existing = fleet.servers.find((s) => s.name === name);
    if (existing) return existing.address;
    const created = { name, address: `127.0.0.1:${await freePort()}` };
    await writeFleetFile(fleetDir, { ...fleet, servers: [...fleet.servers, created] });
    return created.address;
  });
  await startHost(fleetDir, name, version);
  return address;
}

/** Stops a host and removes it from the fleet; one already gone is fine. */
export async function destroyHost(fleetDir: string, name: string): Promise<void> {
  await stopHost(fleetDir, name);
  await withFileLock(join(fleetDir, 'fleet.lock'), async () => {
    const fleet = await readFleetFile(fleetDir);
    await writeFleetFile(fleetDir, { ...fleet, servers: fleet.servers.filter((s) => s.name !== name) });
  });
}
