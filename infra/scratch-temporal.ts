import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sweepFleets } from './fleet/local-fleet';
import { sweepClusters } from './kubernetes-cluster';
import { onInterrupt } from './interrupt';
import type { TemporalDevServer } from './temporal-server';
import { startTemporalDevServer } from './temporal-server';

/** A scratch folder in the temp dir, with a Temporal dev server of its own whose database lives there. */
export interface ScratchTemporal {
  readonly dir: string;
  readonly temporal: TemporalDevServer;
  /** Stops the server and every fleet under the folder, then removes the folder. */
  close(): Promise<void>;
}

/**
 * Starts a scratch folder `baton-<name>-…` and its server, for a benchmark or a test file run alone. Closing it, or
 * SIGINT or SIGTERM before that, leaves nothing behind: the server's database and log are a few MB a run, and a
 * fleet's hosts and HAProxy would go on listening.
 */
export async function startScratchTemporal(name: string, namespace: string): Promise<ScratchTemporal> {
  const dir = await mkdtemp(join(tmpdir(), `baton-${name}-`));
  const removeDir = async () => {
    await sweepFleets(dir);
    await sweepClusters(dir);
    await rm(dir, { recursive: true, force: true });
  };
  const cleanUp = onInterrupt(removeDir);
  let temporal: TemporalDevServer;
  try {
    temporal = await startTemporalDevServer({
      dbFile: join(dir, 'temporal.db'),
      logFile: join(dir, 'temporal.log'),
      namespace,
    });
  } catch (error) {
    await cleanUp();
    throw error;
  }
  return {
    dir,
    temporal,
    close: async () => {
      await temporal.stop();
      await cleanUp();
    },
  };
}
