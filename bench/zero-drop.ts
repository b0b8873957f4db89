import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { realActivityDeps } from '../activities';
import { startHost } from '../infra/fleet/hosts';
import { startLocalFleet } from '../infra/fleet/local-fleet';
import type { LoadStats } from '../infra/load';
import { startLoad } from '../infra/load';
import type { ScratchTemporal } from '../infra/scratch-temporal';
import { parseRolloutSpec } from '../spec';
import { createBatonWorker } from '../worker/create-worker';
import type { rolloutWorkflow } from '../workflows';
import { benchNamespace, startBenchScratch } from './scratch';
import { printTable } from './table';
import { reportFigures } from './verdict';

const servers = 9;
const batch = 2;
const ratePerSecond = 1_000;
/** Boot time of each server process: real services take seconds to start, longer than HAProxy's retries cover. */
const startupMs = 4_000;

/**
 * The same 9-server fleet under the same constant load, upgraded twice, two servers at a time:
 *   baton: Baton's rolling rollout (detach, drain, upgrade, verify, attach);
 *   naive: restart each server in place on the new version while it stays in the load balancer.
 */
export async function runZeroDrop(): Promise<void> {
  const scratch = await startBenchScratch('zero-drop');
  try {
    await compareRollouts(scratch);
  } finally {
    // Also stops the fleet's hosts and HAProxy, if starting the rest failed before they could be stopped.
    await scratch.close();
  }
}

async function compareRollouts({ dir, temporal }: ScratchTemporal): Promise<void> {
  const fleet = await startLocalFleet({
    dir: join(dir, 'fleet'),
    servers,
    version: 'v1',
    defaults: { latencyMs: 10, startupMs },
  });
  const connection = await Connection.connect({ address: temporal.address });
  const nativeConnection = await NativeConnection.connect({ address: temporal.address });
  const taskQueue = 'bench-zero-drop';
  const worker = await createBatonWorker({
    connection: nativeConnection,
    namespace: benchNamespace,
    taskQueue,
    deps: realActivityDeps(),
  });
  const workerRun = worker.run();
  const url = `${fleet.haproxy.frontendUrl}/`;
  try {
    process.stderr.write(`fleet of ${servers} up; ${ratePerSecond} requests/s through HAProxy\n`);

    const timed = async (work: () => Promise<unknown>): Promise<LoadStats> => {
      const load = startLoad({ url, ratePerSecond });
      await work();
      return load.stop();
    };

    process.stderr.write('baton: rolling v1 → v2, batch 2…\n');
    const spec = parseRolloutSpec(
      fleet.spec({
        version: 'v2',
        strategy: { type: 'rolling', batchSize: batch },
        verify: { http: { passes: 5, interval: '500ms', timeout: '30s' } },
      }),
    );
    let phase = '';
    const baton = await timed(async () => {
      const result = await new Client({ connection, namespace: benchNamespace }).workflow.execute<
        typeof rolloutWorkflow
      >('rolloutWorkflow', {
        args: [spec],
        taskQueue,
        workflowId: `rollout/${spec.target.name}`,
      });
      phase = result.phase;
    });
    if (phase !== 'succeeded') throw new Error(`the Baton rollout ended ${phase}`);

    process.stderr.write('naive: restarting v2 → v3 in place, batch 2…\n');
    const naive = await timed(async () => {
      for (let i = 0; i < fleet.servers.length; i += batch) {
        await Promise.all(fleet.servers.slice(i, i + batch).map((s) => startHost(fleet.dir, s.name, 'v3')));
      }
    });

    const kinds = (s: LoadStats) =>
      Object.entries(s.errors)
        .map(([k, n]) => `${k}: ${n}`)
        .join(', ') || '-';
    printTable(
      ['run', 'servers', 'batch', 'durationS', 'sent', 'failed', 'failures'],
      [
        ['baton', servers, batch, baton.durationS.toFixed(1), baton.sent, baton.failed, kinds(baton)],
        ['naive', servers, batch, naive.durationS.toFixed(1), naive.sent, naive.failed, kinds(naive)],
      ],
    );
    const figures = {
      baton: { sent: baton.sent, failed: baton.failed, durationS: round(baton.durationS) },
      naive: { sent: naive.sent, failed: naive.failed, durationS: round(naive.durationS) },
      servers,
      durationS: round(baton.durationS + naive.durationS),
      ratePerSecond,
    };
    // Target: Baton fails none of at least 30,000 requests, and the naive restart fails some.
    reportFigures(figures, baton.failed === 0 && baton.sent >= 30_000 && naive.failed > 0);
  } finally {
    worker.shutdown();
    await workerRun;
    await nativeConnection.close();
    await connection.close();
    await fleet.stop();
  }
}

const round = (n: number) => Math.round(n * 10) / 10;
