import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { startLocalFleet } from '../infra/fleet/local-fleet';
import type { CrashCase } from '../test/chaos/crash-matrix';
import { brokenVersion, crashMatrix, dropsRequestsByDesign, runCrashCase } from '../test/chaos/crash-matrix';
import { benchNamespace, startBenchScratch } from './scratch';
import { printTable } from './table';
import { reportFigures } from './verdict';

/**
 * The crash matrix: for each strategy and each step kind, a rollout of a real fleet under load whose worker process
 * is killed with SIGKILL in that step and replaced, and once during each strategy's rollback. Counts failed
 * requests (recreate's fail by design and are counted apart), duplicate starts of the new version and upgrade
 * commands run twice for a server (the command's own log).
 */
export async function runCrashMatrix(): Promise<void> {
  // A part of the matrix, for a developer working on some steps: BATON_CRASH_STEPS=detach,switch.
  const only = process.env.BATON_CRASH_STEPS?.split(',').filter(Boolean);
  const scratch = await startBenchScratch('crash');
  const { dir, temporal } = scratch;
  const cases: Array<CrashCase & { passed: boolean }> = [];
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ address: temporal.address });
    const client = new Client({ connection, namespace: benchNamespace });
    for (const { strategy, steps, servers } of crashMatrix)
      for (const step of steps.filter((s) => !only || only.includes(s))) {
        const fleet = await startLocalFleet({
          dir: join(dir, `fleet-${strategy}-${step}`),
          servers,
          version: 'v1',
          versions: { [brokenVersion('v2')]: { healthStatus: 500, startupMs: 800 } },
          defaults: { latencyMs: 5, startupMs: 800 },
        });
        try {
          process.stderr.write(`${strategy}: killing the worker during ${step}…\n`);
          const result = await runCrashCase({
            strategy,
            step,
            fleet,
            client,
            temporal: { address: temporal.address, namespace: benchNamespace },
            taskQueue: `crash-${strategy}-${step}`,
            version: 'v2',
          });
          const passed =
            result.landed &&
            result.phase === result.expectedPhase &&
            result.allOnNewVersion &&
            (result.failedRequests === 0 || dropsRequestsByDesign(strategy)) &&
            result.duplicateUpgrades === 0 &&
            result.repeatedCommands === 0;
          cases.push({ ...result, passed });
        } finally {
          await fleet.stop();
        }
      }
    printTable(
      [
        'strategy',
        'killed during',
        'server',
        'landed',
        'rollout',
        'requests',
        'failed',
        'duplicate upgrades',
        'commands run twice',
        'seconds',
        'pass',
      ],
      cases.map((c) => [
        c.strategy,
        c.step,
        c.killedAt,
        c.landed ? 'yes' : 'NO',
        c.phase,
        c.sent,
        c.failedRequests,
        c.duplicateUpgrades,
        c.repeatedCommands,
        c.durationS,
        c.passed ? 'yes' : 'NO',
      ]),
    );
    const figures = {
      ...(only ? { steps: only } : {}),
      cases: cases.length,
      passed: cases.filter((c) => c.passed).length,
      landed: cases.filter((c) => c.landed).length,
      failedRequests: cases
        .filter((c) => !dropsRequestsByDesign(c.strategy))
        .reduce((sum, c) => sum + c.failedRequests, 0),
      failedByDesign: cases
        .filter((c) => dropsRequestsByDesign(c.strategy))
        .reduce((sum, c) => sum + c.failedRequests, 0),
      duplicateUpgrades: cases.reduce((sum, c) => sum + c.duplicateUpgrades, 0),
      repeatedCommands: cases.reduce((sum, c) => sum + c.repeatedCommands, 0),
    };
    for (const c of cases.filter((c) => !c.landed))
      process.stderr.write(`${c.strategy} during ${c.step}: the kill did not land: ${c.landing}\n`);
    // Every case passes only when each kill landed in its step and the rollout ended as it should.
    reportFigures(figures, figures.passed === figures.cases);
  } finally {
    await connection?.close();
    await scratch.close();
  }
}
