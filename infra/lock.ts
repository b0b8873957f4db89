import { open, readFile, rm } from 'node:fs/promises';
import { delay, signalReaches } from './processes';

/**
 * Takes a lock file that other processes on this machine respect, if it is free: created exclusively, with the
 * holder's pid in it, so a lock left by a dead process is taken over. Returns its release, or undefined when a live
 * process holds it.
 */
export async function tryFileLock(path: string): Promise<(() => Promise<void>) | undefined> {
  for (;;) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (holder > 0 && !signalReaches(holder)) await rm(path, { force: true });
      else return undefined;
    }
  }
}

/** Runs `work` while holding the lock file at `path`, waiting for it up to `timeoutMs`. */
export async function withFileLock<T>(path: string, work: () => Promise<T>, timeoutMs = 300_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let release = await tryFileLock(path);
  while (!release) {
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMs / 1000} s for the lock ${path}`);
    await delay(100);
    release = await tryFileLock(path);
  }
  try {
    return await work();
  } finally {
    await release();
  }
}
