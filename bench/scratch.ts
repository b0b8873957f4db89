import type { ScratchTemporal } from '../infra/scratch-temporal';
import { startScratchTemporal } from '../infra/scratch-temporal';

export const benchNamespace = 'bench';

/** A benchmark's scratch folder (`baton-bench-<name>-…`) and its own Temporal dev server. */
export const startBenchScratch = (name: string): Promise<ScratchTemporal> =>
  startScratchTemporal(`bench-${name}`, benchNamespace);
