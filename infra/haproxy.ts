import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDebianPackage } from './debian';
import { HaproxyRuntimeApi } from '../activities/haproxy/runtime-api';
import { delay, runsWith, sendSignal, stopProcess } from './processes';

/** Debian bookworm's HAProxy line; dynamic servers and the Runtime API commands Baton uses need 2.6 or later. */
export const minimumHaproxy = [2, 6] as const;

export async function ensureHaproxy(): Promise<string> {
  const haproxy = await ensureDebianPackage('haproxy', 'haproxy');
  const banner = execFileSync(haproxy, ['-v']).toString();
  const match = /version (\d+)\.(\d+)/.exec(banner);
  const [major, minor] = [Number(match?.[1]), Number(match?.[2])];
  if (!match || major < minimumHaproxy[0] || (major === minimumHaproxy[0] && minor < minimumHaproxy[1])) {
    throw new Error(
      `HAProxy ${minimumHaproxy.join('.')} or later is needed, found: ${banner.split('\n')[0] ?? banner}`,
    );
  }
  return haproxy;
}

export interface HaproxyBackendServer {
  readonly name: string;
  readonly address: string;
}

export interface LocalHaproxy {
  /** The admin Runtime API socket (mode 600). */
  readonly socket: string;
  readonly backend: string;
  /** Where users' requests enter, e.g. http://127.0.0.1:18080. */
  readonly frontendUrl: string;
  /** The running process; a reload replaces it. */
  readonly pid: number;
  /**
   * Reloads HAProxy as configuration management does: a new process from the same configuration file, told to
   * take over from the old one (-sf), which finishes its requests and exits. State set through the Runtime API
   * (drains, weights, servers added) is not carried over.
   */
  reload(): Promise<void>;
  stop(): Promise<void>;
}

/** Health check settings of every server; servers added at run time get the same. */
export const serverCheckOptions = ['check', 'inter', '1s', 'fall', '2', 'rise', '2'] as const;

/**
 * The configuration of a typical HAProxy in front of a web fleet: HTTP health checks, keep-alive to the servers,
 * a dynamic balance algorithm (roundrobin) so servers can be added and weighted at run time.
 */
export function haproxyConfig(options: {
  socket: string;
  frontendPort: number;
  /** Where the frontend listens: loopback here, every interface inside a container. */
  bindAddress?: string;
  backend: string;
  servers: readonly HaproxyBackendServer[];
}): string {
  return [
    'global',
    // expose-fd listeners: a reload (-x) takes the listening sockets over instead of binding its own, so no
    // connection waiting to be accepted by the old process is reset.
    `  stats socket ${options.socket} mode 600 level admin expose-fd listeners`,
    '  stats timeout 30s',
    // No global maxconn: HAProxy sizes it from the file descriptor limit, which varies between machines.
    '',
    'defaults',
    '  mode http',
    '  option http-keep-alive',
    // On a reload the old process would close idle client connections, and a client sending on one just then
    // gets a reset; with this it answers the next request on each, with Connection: close, then closes it.
    '  option idle-close-on-response',
    '  timeout connect 2s',
    '  timeout client 30s',
    '  timeout server 30s',
    '  timeout http-keep-alive 10s',
    '  retries 3',
    '',
    'frontend public',
    `  bind ${options.bindAddress ?? '127.0.0.1'}:${options.frontendPort}`,
    `  default_backend ${options.backend}`,
    '',
    `backend ${options.backend}`,
    '  balance roundrobin',
    '  option httpchk GET /healthz',
    '  http-check expect status 200',
    `  default-server ${serverCheckOptions.join(' ')}`,
    ...options.servers.map((s) => `  server ${s.name} ${s.address}`),
    '',
  ].join('\n');
}

const haproxyConfigPath = (dir: string) => join(dir, 'haproxy.cfg');
const haproxyPidPath = (dir: string) => join(dir, 'haproxy.pid');

/**
 * Kills the HAProxy started in `dir` by the pid it recorded, when the process that started it can't stop it (it
 * died). False when none runs: the pid counts only while its process still runs this folder's config file, since a
 * pid file outlives its process and the kernel hands the pid out again.
 */
export function killRecordedHaproxy(dir: string): boolean {
  const pidFile = haproxyPidPath(dir);
  const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : 0;
  if (!pid || !runsWith(pid, haproxyConfigPath(dir))) return false;
  // Not delivered only if it ended meanwhile: it was running all the same.
  sendSignal(pid, 'SIGKILL');
  return true;
}

/** Starts HAProxy unprivileged in the foreground (-db), its config and socket in `dir`. */
export async function startHaproxy(options: {
  dir: string;
  frontendPort: number;
  backend: string;
  servers: readonly HaproxyBackendServer[];
}): Promise<LocalHaproxy> {
  const haproxy = await ensureHaproxy();
  await mkdir(options.dir, { recursive: true });
  const socket = join(options.dir, 'admin.sock');
  const configPath = haproxyConfigPath(options.dir);
  const logPath = join(options.dir, 'haproxy.log');
  await writeFile(configPath, haproxyConfig({ ...options, socket }));
  const log = createWriteStream(logPath, { flags: 'a' });
  const launch = async (takeOverFrom?: number) => {
    const args = [
      '-db',
      '-f',
      configPath,
      ...(takeOverFrom ? ['-x', socket, '-sf', String(takeOverFrom)] : []),
    ];
    const process = spawn(haproxy, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    // Recorded so a sweep can end it even if the process that started it died.
    await writeFile(haproxyPidPath(options.dir), String(process.pid));
    process.stdout.pipe(log, { end: false });
    process.stderr.pipe(log, { end: false });
    return process;
  };
  let child = await launch();
  const deadline = Date.now() + 10_000;
  while (!existsSync(socket)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stopProcess(child);
      throw new Error(
        `HAProxy did not start (log ${logPath}):\n${await readFile(logPath, 'utf8').catch(() => '')}`,
      );
    }
    await delay(50);
  }
  return {
    socket,
    backend: options.backend,
    frontendUrl: `http://127.0.0.1:${options.frontendPort}`,
    get pid() {
      return child.pid ?? -1;
    },
    reload: async () => {
      const old = child;
      child = await launch(old.pid);
      // Reloaded once the new process answers on the socket; the old one exits when its requests are done.
      const until = Date.now() + 10_000;
      const api = new HaproxyRuntimeApi(socket);
      for (;;) {
        const info = await api.send('show info').catch(() => '');
        if (new RegExp(`^Pid: ${child.pid}$`, 'm').test(info)) break;
        if (child.exitCode !== null || Date.now() > until)
          throw new Error(`HAProxy did not reload (log ${logPath})`);
        await delay(20);
      }
      // -sf asked it to stop softly: it finishes its requests (timeout client bounds them) and exits by itself.
      if (old.exitCode === null && old.signalCode === null) {
        const late = setTimeout(() => old.kill('SIGKILL'), 35_000);
        await new Promise<void>((resolve) => old.once('exit', () => resolve()));
        clearTimeout(late);
      }
    },
    stop: async () => {
      await stopProcess(child, 5_000);
      log.end();
    },
  };
}
