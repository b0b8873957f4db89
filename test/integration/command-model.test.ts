import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Worker } from '@temporalio/worker';
import { SimulatedFleets } from '../../activities/fakes/simulated-fleet';
import { createBatonWorker } from '../../worker/create-worker';
import { runCommandModel } from '../helpers/command-model';
import type { TestTemporal } from '../helpers/temporal';
import { connectTestTemporal, uniqueTaskQueue, workflowBundle } from '../helpers/temporal';

/** Generated sequences in CI; `npm run bench -- commands` runs more. */
const sequences = Number(process.env.BATON_MODEL_SEQUENCES ?? 300);

let temporal: TestTemporal;
let worker: Worker;
let running: Promise<void>;
const taskQueue = uniqueTaskQueue('command-model');
const fleets = new SimulatedFleets({ detachMs: 0, drainMs: 10, upgradeMs: 20, verifyMs: 10, attachMs: 0 });

before(async () => {
  temporal = await connectTestTemporal();
  worker = await createBatonWorker({
    connection: temporal.nativeConnection,
    namespace: temporal.namespace,
    taskQueue,
    deps: fleets.deps(),
    workflowBundle: await workflowBundle(),
  });
  running = worker.run();
});
after(async () => {
  worker.shutdown();
  await running;
  await temporal.close();
});

describe('operator commands keep their word at every moment (real Temporal, simulated fleets)', () => {
  it(`${sequences} generated sequences of pause, resume, promote, promote --full and abort`, async () => {
    const { violations } = await runCommandModel(
      { client: temporal.client, fleets, taskQueue },
      sequences,
      10,
    );
    assert.deepEqual(violations, []);
  });
});
