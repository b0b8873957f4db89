import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useFleets } from '../helpers/fleet';
import { uniqueTaskQueue } from '../helpers/temporal';
import { brokenVersion, crashSample, dropsRequestsByDesign, runCrashCase } from './crash-matrix';

const { temporal, fleet: startFleet } = useFleets();

/**
 * A sample of the matrix that kills the worker in every strategy and in every step; `npm run bench -- crash-matrix`
 * runs every case. Two cases at a time: each has its own fleet, task queue and worker process, and most of a case
 * is Temporal waiting out the dead worker's heartbeat timeout.
 */
describe('crash matrix: the worker killed (SIGKILL) in a rollout under load', { concurrency: 2 }, () => {
  for (const { strategy, step, servers } of crashSample()) {
    it(`${strategy}, during ${step}: a new worker finishes the rollout, each server started on a version once and upgraded to it by one command, no request failed unless the strategy stops every server`, async () => {
      const fleet = await startFleet({
        servers,
        version: 'v1',
        versions: { [brokenVersion('v2')]: { healthStatus: 500, startupMs: 800 } },
        defaults: { latencyMs: 5, startupMs: 800 },
      });
      const testTemporal = temporal();
      const result = await runCrashCase({
        strategy,
        step,
        fleet,
        client: testTemporal.client,
        temporal: testTemporal,
        taskQueue: uniqueTaskQueue(`crash-${strategy}-${step}`),
        version: 'v2',
      });
      assert.ok(result.landed, `the kill landed in ${step}: ${result.landing}`);
      assert.equal(result.phase, result.expectedPhase);
      assert.ok(result.allOnNewVersion, 'every server on the version the rollout leaves');
      assert.equal(result.duplicateUpgrades, 0, 'no server started v2 twice');
      assert.equal(result.repeatedCommands, 0, 'no upgrade command to v2 ran twice for a server');
      assert.ok(result.sent > 50, `sent ${result.sent}`);
      if (!dropsRequestsByDesign(strategy))
        assert.equal(result.failedRequests, 0, `${result.failedRequests} of ${result.sent} requests failed`);
    });
  }
});
