import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LocalFleet, LocalFleetOptions } from '../../infra/fleet/local-fleet';
import { startLocalFleet } from '../../infra/fleet/local-fleet';
import { after, before } from 'node:test';
import type { TestTemporal } from './temporal';
import { connectTestTemporal } from './temporal';

/**
 * HAProxy's status of a server in rotation: UP, or "UP 1/2" when a loaded machine made one health check late (the
 * server stays UP until `fall` checks in a row fail).
 */
export const inRotation = /^UP( \d+\/\d+)?$/;

/**
 * A real fleet (demo app processes behind a real HAProxy) in a fresh folder under BATON_TEST_FLEETS_DIR, which
 * the test runner sweeps at the end so no process outlives the run.
 */
export async function startTestFleet(options: Omit<LocalFleetOptions, 'dir'>): Promise<LocalFleet> {
  const root = process.env.BATON_TEST_FLEETS_DIR ?? tmpdir();
  await mkdir(root, { recursive: true });
  return startLocalFleet({ ...options, dir: await mkdtemp(join(root, 'fleet-')) });
}

/**
 * For a test file that rolls out real fleets: connects to the test Temporal before its tests and, after them,
 * stops every fleet it started and closes the connection.
 */
export function useFleets(): { temporal: () => TestTemporal; fleet: typeof startTestFleet } {
  let temporal: TestTemporal | undefined;
  const fleets: LocalFleet[] = [];
  before(async () => {
    temporal = await connectTestTemporal();
  });
  after(async () => {
    await Promise.all(fleets.map((f) => f.stop()));
    await temporal?.close();
  });
  return {
    temporal: () => {
      if (!temporal) throw new Error('useFleets: Temporal is connected in before()');
      return temporal;
    },
    fleet: async (options) => {
      const fleet = await startTestFleet(options);
      fleets.push(fleet);
      return fleet;
    },
  };
}
