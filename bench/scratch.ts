import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sweepFleets } from '../infra/fleet/local-fleet';
import { onInterrupt } from '../infra/interrupt';
import type { TemporalDevServer } from '../infra/temporal-server';
import { startTemporalDevServer } from '../infra/temporal-server';

/** A benchmark's scratch folder in the temp dir, with its own Temporal dev server whose database lives there. */
export interface BenchScratch {
  readonly dir: string;
  readonly temporal: TemporalDevServer;
  /** Stops the server and every fleet under the folder, then removes the folder. */
  close(): Promise<void>;
}

export const benchNamespace = 'bench';

/**
 * Starts a benchmark's scratch. Closing it, or SIGINT or SIGTERM before that, leaves nothing behind: the server's
 * database and log are a few MB a run, and a fleet's hosts and HAProxy would go on listening.
 */
export async function startBenchScratch(name: string): Promise<BenchScratch> {
  const dir = await mkdtemp(join(tmpdir(), `baton-bench-${name}-`));
  const removeDir = async () => {
    await sweepFleets(dir);
    await rm(dir, { recursive: true, force: true });
  };
  const cleanUp = onInterrupt(removeDir);
  let temporal: TemporalDevServer;
  try {
    temporal = await startTemporalDevServer({
      dbFile: join(dir, 'temporal.db'),
      logFile: join(dir, 'temporal.log'),
      namespace: benchNamespace,
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
