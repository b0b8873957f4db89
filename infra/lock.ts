import { open, readFile, rm } from 'node:fs/promises';
import { delay, signalReaches } from './processes';

/**
 * Runs `work` while holding a lock file that other processes on this machine respect: created exclusively, with
 * the holder's pid in it, so a lock left by a dead process is taken over.
 */
export async function withFileLock<T>(path: string, work: () => Promise<T>, timeoutMs = 300_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (holder > 0 && !signalReaches(holder)) await rm(path, { force: true });
      else if (Date.now() > deadline) throw new Error(`waited ${timeoutMs / 1000} s for the lock ${path}`);
      else await delay(100);
    }
  }
  try {
    return await work();
  } finally {
    await rm(path, { force: true });
  }
}
