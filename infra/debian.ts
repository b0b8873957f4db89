import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { say } from './cache';
import { runCommand } from './run-command';

/**
 * Finds a program in PATH or the usual sbin folders (Debian puts daemons in /usr/sbin, often not in PATH); a path
 * is taken as it is, for packages that keep their programs in a folder of their own.
 */
export function findProgram(name: string): string | undefined {
  if (name.startsWith('/')) return existsSync(name) ? name : undefined;
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  return dirs.map((dir) => `${dir}/${name}`).find((path) => isFile(path));
}

function isFile(path: string): boolean {
  return path.startsWith('/') && existsSync(path);
}

/** Runs apt-get update, then installs `packages` (as root, or through non-interactive sudo). */
async function aptInstall(packages: readonly string[]): Promise<void> {
  const isRoot = process.getuid?.() === 0;
  const sudo = isRoot ? [] : ['sudo', '-n'];
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    await runCommand([...sudo, 'apt-get', 'update', '-qq'], {
      label: `apt-get update (to install ${packages.join(', ')})`,
      env,
    });
    await runCommand([...sudo, 'apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...packages], {
      label: `installing ${packages.join(', ')} from Debian`,
      env,
    });
  } catch (error) {
    throw new Error(
      `installing Debian's ${packages.join(', ')} failed${isRoot ? '' : ` (run: sudo apt-get install ${packages.join(' ')})`}:\n${(error as Error).message}`,
    );
  }
}

/**
 * Makes sure a Debian package is installed, installing it with apt-get when it isn't. Debian's packages are the
 * cache here: apt keeps the version the distribution pins.
 */
export async function ensureDebianPackage(pkg: string, program: string, versionFlag = '-v'): Promise<string> {
  const found = findProgram(program);
  if (found) return found;
  try {
    await aptInstall([pkg]);
  } catch (error) {
    throw new Error(`${program} is not installed and ${(error as Error).message}`);
  }
  const installed = findProgram(program);
  if (!installed) throw new Error(`installed Debian's ${pkg} but ${program} is still not found`);
  say(`${pkg} installed: ${execFileSync(installed, [versionFlag]).toString().split('\n')[0] ?? ''}`);
  return installed;
}

/**
 * Installs, in one apt-get run, those of several Debian packages whose program is missing: each apt-get run pays
 * for an index update, and two at once fight over dpkg's lock.
 */
export async function ensureDebianPackages(
  packages: readonly { readonly pkg: string; readonly program: string }[],
): Promise<void> {
  const missing = packages.filter(({ program }) => !findProgram(program)).map(({ pkg }) => pkg);
  if (missing.length > 0) await aptInstall(missing);
}

/**
 * Debian's headless-capable Chromium, for the browser test of the Temporal UI (playwright-core drives it; its
 * own browser download is not reachable from here).
 */
export function ensureChromium(): Promise<string> {
  return ensureDebianPackage('chromium', 'chromium', '--version');
}
