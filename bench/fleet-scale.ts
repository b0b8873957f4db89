import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { realActivityDeps } from '../activities';
import { runtimeApiUsage } from '../activities/haproxy/runtime-api';
import { hostVersions, upgradeCommands } from '../infra/fleet/hosts';
import type { LocalFleet } from '../infra/fleet/local-fleet';
import { startLocalFleet } from '../infra/fleet/local-fleet';
import { startLoad } from '../infra/load';
import { delay } from '../infra/processes';
import type { RolloutSpec } from '../spec';
import { parseRolloutSpec } from '../spec';
import { createBatonWorker } from '../worker/create-worker';
import type { rolloutWorkflow } from '../workflows';
import { benchNamespace, startBenchScratch } from './scratch';
import { median, round } from './simulated';
import { printTable } from './table';
import { stepsAlone } from './steps-alone';
import { reportFigures } from './verdict';

const servers = Number(process.env.BATON_BENCH_SERVERS ?? 1_000);
const ratePerSecond = 200;
const taskQueue = 'bench-fleet-scale';
/** Rollouts per side; each figure is the median of its side's. */
const runs = Number(process.env.BATON_BENCH_RUNS ?? 3);

interface Side {
  readonly run: string;
  readonly from: string;
  readonly to: string;
  readonly wallS: number;
  readonly sent: number;
  readonly failed: number;
  readonly errors: string;
  readonly runtimeApiCommands: number;
}

/**
 * 1,000 real servers (one process, a port and a version each, see server-farm.ts) behind one real HAProxy, under
 * steady load, rolled 10% at a time by Baton. The floor is the same steps with nothing between them: the same
 * activity code, group after group, called directly (MockActivityEnvironment) instead of by a workflow on
 * Temporal, on the same fleet, with the same settings, under the same load, in the same run. Every upgrade
 * command is counted from the farm's own log; Runtime API commands from this process's client.
 */
export async function runFleetScale(): Promise<void> {
  const scratch = await startBenchScratch('fleet-scale');
  try {
    process.stderr.write(`fleet-scale: starting ${servers} servers and HAProxy…\n`);
    const fleet = await startLocalFleet({
      dir: join(scratch.dir, 'fleet'),
      servers,
      version: 'v1',
      farm: true,
      defaults: { latencyMs: 20, startupMs: 1_000 },
    });
    const connection = await Connection.connect({ address: scratch.temporal.address });
    const nativeConnection = await NativeConnection.connect({ address: scratch.temporal.address });
    const deps = realActivityDeps();
    const worker = await createBatonWorker({
      connection: nativeConnection,
      namespace: benchNamespace,
      taskQueue,
      deps,
    });
    const running = worker.run();
    try {
      await untilAllUp(fleet);
      const client = new Client({ connection, namespace: benchNamespace });
      const rollOut = {
        baton: async (spec: RolloutSpec) => {
          const result = await client.workflow.execute<typeof rolloutWorkflow>('rolloutWorkflow', {
            args: [spec],
            taskQueue,
            workflowId: `rollout/${spec.target.name}/${spec.version}`,
          });
          if (result.phase !== 'succeeded')
            throw new Error(`Baton's rollout ended ${result.phase}: ${result.reason}`);
        },
        floor: (spec: RolloutSpec) => stepsAlone(spec, deps),
      };
      // Taking turns, the floor first: neither side gets the other's warm-up (JIT, connections, caches).
      const sides: Side[] = [];
      for (let round = 0; round < runs; round++)
        for (const run of ['floor', 'baton'] as const) {
          const from = `v${sides.length + 1}`;
          const to = `v${sides.length + 2}`;
          sides.push(await underLoad(fleet, run, from, to, rollOut[run]));
        }
      printTable(
        ['run', 'servers', 'from', 'to', 'wallS', 'sent', 'failed', 'failures', 'runtimeApiCommands'],
        sides.map((s) => [
          s.run,
          servers,
          s.from,
          s.to,
          s.wallS,
          s.sent,
          s.failed,
          s.errors,
          s.runtimeApiCommands,
        ]),
      );
      const of = (run: string) => sides.filter((side) => side.run === run);
      const wallS = round(median(of('baton').map((side) => side.wallS)), 1);
      const floorS = round(median(of('floor').map((side) => side.wallS)), 1);
      const failed = of('baton').reduce((sum, side) => sum + side.failed, 0);
      // Target: at most 1.10 of the floor's time, with no failed request.
      reportFigures(
        {
          servers,
          wallS,
          floorS,
          ratio: round(wallS / floorS, 3),
          failed,
          runtimeApiCommands: Math.max(...of('baton').map((side) => side.runtimeApiCommands)),
          floorFailed: of('floor').reduce((sum, side) => sum + side.failed, 0),
        },
        wallS / floorS <= 1.1 && failed === 0,
      );
    } finally {
      worker.shutdown();
      await running;
      await connection.close();
      await nativeConnection.close();
      await fleet.stop();
    }
  } finally {
    await scratch.close();
  }
}

/** HAProxy's own checks see every server UP: a rollout's preflight and its first drains find a settled backend. */
async function untilAllUp(fleet: LocalFleet): Promise<void> {
  const traffic = realActivityDeps().trafficFor({ socket: fleet.haproxy.socket, backend: 'web' });
  const names = fleet.servers.map((server) => server.name);
  const deadline = Date.now() + 120_000;
  for (;;) {
    const readings = await traffic.trafficOf(names);
    const down = names.filter((name) => readings[name]?.status !== 'UP');
    if (down.length === 0) return;
    if (Date.now() > deadline) throw new Error(`${down.length} servers still not UP, e.g. ${down[0]}`);
    await delay(500);
  }
}

/** One rollout of the whole fleet from one version to the next under load, checked: once per server, all moved. */
async function underLoad(
  fleet: LocalFleet,
  run: string,
  from: string,
  to: string,
  rollOut: (spec: RolloutSpec) => Promise<void>,
): Promise<Side> {
  const spec = parseRolloutSpec(
    fleet.spec(
      {
        version: to,
        strategy: { type: 'rolling', batchSize: '10%' },
        drain: { timeout: '30s', pollInterval: '100ms' },
        verify: { http: { passes: 2, interval: '500ms', timeout: '30s' } },
      },
      `scale-${run}`,
    ),
  );
  process.stderr.write(`fleet-scale: ${run}, ${from} → ${to}, 10% at a time, ${ratePerSecond} requests/s…\n`);
  const load = startLoad({ url: `${fleet.haproxy.frontendUrl}/`, ratePerSecond });
  await delay(1_000);
  const commandsBefore = runtimeApiUsage.commands;
  const started = performance.now();
  await rollOut(spec);
  const wallS = round((performance.now() - started) / 1000, 1);
  const runtimeApiCommands = runtimeApiUsage.commands - commandsBefore;
  await delay(500);
  const stats = await load.stop();
  const versions = Object.values(await hostVersions(fleet.dir));
  if (versions.some((version) => version !== to)) throw new Error(`${run}: not every server runs ${to}`);
  const commands = (await upgradeCommands(fleet.dir)).filter((command) => command.version === to);
  if (commands.length !== servers)
    throw new Error(`${run}: ${commands.length} upgrade commands for ${servers} servers`);
  return {
    run,
    from,
    to,
    wallS,
    sent: stats.sent,
    failed: stats.failed,
    errors:
      Object.entries(stats.errors)
        .map(([kind, n]) => `${kind}: ${n}`)
        .join(', ') || '-',
    runtimeApiCommands,
  };
}
