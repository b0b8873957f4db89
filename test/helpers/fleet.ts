import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LocalFleet, LocalFleetOptions } from '../../infra/fleet/local-fleet';
import { startLocalFleet } from '../../infra/fleet/local-fleet';

/**
 * A real fleet (demo app processes behind a real HAProxy) in a fresh folder under BATON_TEST_FLEETS_DIR, which
 * the test runner sweeps at the end so no process outlives the run.
 */
export async function startTestFleet(options: Omit<LocalFleetOptions, 'dir'>): Promise<LocalFleet> {
  const root = process.env.BATON_TEST_FLEETS_DIR ?? tmpdir();
  await mkdir(root, { recursive: true });
  return startLocalFleet({ ...options, dir: await mkdtemp(join(root, 'fleet-')) });
}
