import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Worker } from '@temporalio/worker';
import { realActivityDeps } from '../../activities';
import type { ActivityDeps } from '../../activities';
import { SimulatedFleets } from '../../activities/fakes/simulated-fleet';
import { HaproxyTrafficProvider } from '../../activities/haproxy/traffic-provider';
import { countStarts, hostVersions } from '../../infra/fleet/hosts';
import { parseRolloutSpec } from '../../spec';
import { createBatonWorker } from '../../worker/create-worker';
import type { ModelWorld } from '../helpers/command-model';
import { runCommandModel, simulatedWorld } from '../helpers/command-model';
import { inRotation, startTestFleet } from '../helpers/fleet';
import type { TestTemporal } from '../helpers/temporal';
import { connectTestTemporal, uniqueTaskQueue, workflowBundle } from '../helpers/temporal';

/** Generated sequences in npm test, a sample: `npm run bench -- commands` runs 2,000. */
const sequences = Number(process.env.BATON_MODEL_SEQUENCES ?? 60);
/** The smaller sample on real servers behind real HAProxy. */
const realSequences = Number(process.env.BATON_MODEL_REAL_SEQUENCES ?? 12);

let temporal: TestTemporal;
const workers: Array<{ worker: Worker; running: Promise<void> }> = [];
const fleets = new SimulatedFleets({ detachMs: 0, drainMs: 10, upgradeMs: 20, verifyMs: 10, attachMs: 0 });

async function startWorker(taskQueue: string, deps: ActivityDeps): Promise<void> {
  const worker = await createBatonWorker({
    connection: temporal.nativeConnection,
    namespace: temporal.namespace,
    taskQueue,
    deps,
    workflowBundle: await workflowBundle(),
  });
  workers.push({ worker, running: worker.run() });
}

before(async () => {
  temporal = await connectTestTemporal();
});
after(async () => {
  for (const { worker } of workers) worker.shutdown();
  await Promise.all(workers.map((w) => w.running));
  await temporal.close();
});

/** Real demo servers behind real HAProxy, one fleet per sequence; the upgrades counted from the app's start log. */
function realFleetWorld(taskQueue: string): ModelWorld {
  return {
    client: temporal.client,
    taskQueue,
    // A real server restarts in about a second: commands are spread over as much longer.
    pace: 8,
    shapes: ['rolling', 'rolling-gate', 'canary-gate'],
    target: async (name, servers, spec) => {
      const fleet = await startTestFleet({ servers: Math.min(servers, 4), version: 'v1' });
      return {
        spec: parseRolloutSpec({
          ...fleet.spec({ version: 'v2', ...spec }, name),
          drain: { timeout: '30s', pollInterval: '50ms' },
          verify: { http: { passes: 1, interval: '100ms', timeout: '10s' } },
        }),
        servers: async () => {
          const starts = await countStarts(fleet.dir);
          const traffic = new HaproxyTrafficProvider(fleet.haproxy.socket, 'web');
          return Promise.all(
            Object.entries(await hostVersions(fleet.dir)).map(async ([server, version]) => ({
              name: server,
              version: version ?? 'none',
              upgrades: starts.filter((s) => s.name === server).length - 1,
              serving: inRotation.test((await traffic.traffic(server)).status),
            })),
          );
        },
        stop: () => fleet.stop(),
      };
    },
  };
}

describe('operator commands keep their word at every moment (real Temporal)', () => {
  it(`${sequences} generated sequences of pause, resume, promote, promote --full and abort, on simulated fleets`, async () => {
    const taskQueue = uniqueTaskQueue('command-model');
    await startWorker(taskQueue, fleets.deps());
    const { violations } = await runCommandModel(
      simulatedWorld(temporal.client, fleets, taskQueue),
      sequences,
      20,
    );
    assert.deepEqual(violations, []);
  });

  it(`${realSequences} of them on real servers behind real HAProxy`, async () => {
    const taskQueue = uniqueTaskQueue('command-model-real');
    await startWorker(taskQueue, realActivityDeps());
    const { violations } = await runCommandModel(realFleetWorld(taskQueue), realSequences, 4);
    assert.deepEqual(violations, []);
  });
});
