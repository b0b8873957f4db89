import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDebianPackage } from './debian';
import { onInterrupt } from './interrupt';
import { freePort } from './ports';
import { runCommand } from './run-command';

/** Debian bookworm's PostgreSQL: its server programs live in a versioned folder, off PATH. */
export const postgresMajor = 15;
const postgresBin = `/usr/lib/postgresql/${postgresMajor}/bin`;

/** Installs Debian's PostgreSQL server when its programs are missing; returns the folder that holds them. */
export async function ensurePostgres(): Promise<string> {
  if (!existsSync(join(postgresBin, 'postgres')))
    await ensureDebianPackage(`postgresql-${postgresMajor}`, `${postgresBin}/pg_ctl`, '--version');
  return postgresBin;
}

export interface LocalPostgres {
  /** host:port on loopback. */
  readonly address: string;
  readonly port: number;
  /** The superuser, trusted on loopback: a scratch server for tests, with no password. */
  readonly user: string;
  /** SIGKILL-like stop then start (`pg_ctl restart -m immediate`): the server recovers from its WAL. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A PostgreSQL server of its own on a free loopback port, its data in a scratch folder. PostgreSQL refuses to run
 * as root, so as root the server runs as Debian's `postgres` user, in a folder that user owns.
 */
export async function startPostgres(options: { user: string }): Promise<LocalPostgres> {
  const bin = await ensurePostgres();
  // Its own folder under the system temp dir: a caller's scratch folder is often 0700 root, which postgres can't enter.
  const root = await mkdtemp(join(tmpdir(), 'baton-postgres-'));
  await chmod(root, 0o711);
  const data = join(root, 'data');
  // Its unix socket and its log: a folder the server's user can write.
  const runDir = join(root, 'run');
  await mkdir(data, { mode: 0o700 });
  await mkdir(runDir);
  const asUser = process.getuid?.() === 0 ? postgresAccount() : undefined;
  if (asUser) for (const path of [data, runDir]) await chown(path, asUser.uid, asUser.gid);
  const asPostgres = (argv: string[], label: string) =>
    asUser
      ? runCommand(['setpriv', `--reuid=${asUser.uid}`, `--regid=${asUser.gid}`, '--clear-groups', ...argv], {
          label,
          quiet: true,
        })
      : runCommand(argv, { label, quiet: true });
  const port = await freePort();
  const pgCtl = join(bin, 'pg_ctl');
  await asPostgres(
    [join(bin, 'initdb'), '-D', data, '-U', options.user, '--auth=trust', '--no-sync', '-E', 'UTF8'],
    'initdb',
  );
  const serverOptions = [
    `-p ${port}`,
    `-k ${runDir}`,
    '-c listen_addresses=127.0.0.1',
    // Each Temporal service keeps a pool of its own; the default of 100 is tight for several processes.
    '-c max_connections=400',
  ].join(' ');
  const start = () =>
    asPostgres(
      [pgCtl, 'start', '-w', '-t', '60', '-D', data, '-l', join(runDir, 'postgres.log'), '-o', serverOptions],
      'pg_ctl start',
    );
  await start();
  const stopServer = async () => {
    if (existsSync(join(data, 'postmaster.pid')))
      await asPostgres([pgCtl, 'stop', '-w', '-m', 'fast', '-D', data], 'pg_ctl stop').catch(() => undefined);
  };
  const unregister = onInterrupt(async () => {
    await stopServer();
    await rm(root, { recursive: true, force: true });
  });
  return {
    address: `127.0.0.1:${port}`,
    port,
    user: options.user,
    restart: async () => {
      await asPostgres([pgCtl, 'stop', '-w', '-m', 'immediate', '-D', data], 'pg_ctl stop -m immediate');
      await start();
    },
    stop: unregister,
  };
}

function postgresAccount(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres']).toString().trim());
  return { uid: id('-u'), gid: id('-g') };
}
