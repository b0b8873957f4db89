import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LocalFleet } from '../../infra/fleet/local-fleet';
import { startTestFleet } from '../helpers/fleet';
import type { TestTemporal } from '../helpers/temporal';
import { connectTestTemporal, uniqueTaskQueue } from '../helpers/temporal';
import { crashSteps, runCrashCase } from './crash-matrix';

let temporal: TestTemporal;
const fleets: LocalFleet[] = [];
before(async () => {
  temporal = await connectTestTemporal();
});
after(async () => {
  await Promise.all(fleets.map((f) => f.stop()));
  await temporal.close();
});

describe('crash matrix: the worker killed (SIGKILL) in each step of a rolling rollout under load', () => {
  for (const step of crashSteps) {
    it(`during ${step}: a new worker finishes the rollout, every server started on v2 once, no request failed`, async () => {
      const fleet = await startTestFleet({
        servers: 3,
        version: 'v1',
        defaults: { latencyMs: 5, startupMs: 800 },
      });
      fleets.push(fleet);
      const result = await runCrashCase({
        step,
        fleet,
        client: temporal.client,
        temporal,
        taskQueue: uniqueTaskQueue(`crash-${step}`),
        version: 'v2',
      });
      assert.equal(result.phase, 'succeeded');
      assert.ok(result.allOnNewVersion, 'every server on v2');
      assert.equal(result.duplicateUpgrades, 0, 'no server started v2 twice');
      assert.ok(result.sent > 50, `sent ${result.sent}`);
      assert.equal(result.failedRequests, 0, `${result.failedRequests} of ${result.sent} requests failed`);
    });
  }
});
