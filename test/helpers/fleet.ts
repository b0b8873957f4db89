import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LocalFleet, LocalFleetOptions } from '../../infra/fleet/local-fleet';
import { startLocalFleet } from '../../infra/fleet/local-fleet';

/** A real fleet (demo app processes behind a real HAProxy) in a fresh temporary folder. */
export async function startTestFleet(options: Omit<LocalFleetOptions, 'dir'>): Promise<LocalFleet> {
  return startLocalFleet({ ...options, dir: await mkdtemp(join(tmpdir(), 'baton-fleet-')) });
}
