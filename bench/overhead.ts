import { fetchRolloutEvents } from '../client/history';
import type { rolloutWorkflow } from '../workflows';
import type { StepTimes } from '../activities/fakes/simulated-fleet';
import { percentile, round, simulatedSpec, startSimulatedBench, stepOverheadsMs } from './simulated';
import { stepsAlone } from './steps-alone';
import { printTable } from './table';
import { reportFigures } from './verdict';

const times: StepTimes = { detachMs: 0, drainMs: 200, upgradeMs: 300, verifyMs: 100, attachMs: 0 };
const sizes = (process.env.BATON_BENCH_SIZES ?? '10,100,1000').split(',').map(Number);
/** Rollouts per size: one run on a shared 2-core machine varies by a percent or two, so the median is reported. */
const repeats = Number(process.env.BATON_BENCH_REPEATS ?? '3');

/**
 * Baton's own overhead: simulated fleets whose steps take fixed, known times (detach 0, drain 200 ms, upgrade
 * 300 ms, verify 100 ms, attach 0), rolled 10% at a time, on one worker and the local dev server; each size rolled
 * out `repeats` times, the sizes taking turns. The floor is measured in the same run, taking turns with Baton: the
 * same activities on a fleet of the same size, called one after the other with nothing between them (see
 * stepsAlone). Each step's overhead is read from the history (see stepOverheadsMs).
 */
export async function runOverhead(): Promise<void> {
  const bench = await startSimulatedBench('overhead', times, { maxConcurrentActivityTaskExecutions: 2_000 });
  const walls = new Map<number, number[]>(sizes.map((servers) => [servers, []]));
  const floors = new Map<number, number[]>(sizes.map((servers) => [servers, []]));
  const overheads = new Map<number, number[]>(sizes.map((servers) => [servers, []]));
  try {
    for (let run = 1; run <= repeats; run++) {
      for (const servers of sizes) {
        const name = `overhead-${servers}-${run}`;
        const spec = simulatedSpec(bench.fleets, name, servers);
        process.stderr.write(`overhead: ${servers} servers, run ${run} of ${repeats}…\n`);
        // The floor first: neither side gets the other's warm-up.
        const floorStarted = Date.now();
        await stepsAlone(
          simulatedSpec(bench.fleets, `floor-${servers}-${run}`, servers),
          bench.fleets.deps(),
        );
        floors.get(servers)?.push((Date.now() - floorStarted) / 1000);
        const started = Date.now();
        const handle = await bench.client.workflow.start<typeof rolloutWorkflow>('rolloutWorkflow', {
          args: [spec],
          taskQueue: bench.taskQueue,
          workflowId: `rollout/${name}`,
        });
        const result = await handle.result();
        const wallS = (Date.now() - started) / 1000;
        if (result.phase !== 'succeeded')
          throw new Error(`the ${servers}-server rollout ended ${result.phase}`);
        const events = await fetchRolloutEvents(bench.client, handle.workflowId, handle.firstExecutionRunId);
        walls.get(servers)?.push(wallS);
        overheads.get(servers)?.push(...stepOverheadsMs(events, bench.fleets));
      }
    }
  } finally {
    await bench.close();
  }
  const points = sizes.map((servers) => {
    const batches = Math.ceil(servers / Math.ceil(servers / 10));
    const floorS = percentile(floors.get(servers) ?? [], 50);
    const wallS = percentile(walls.get(servers) ?? [], 50);
    return { servers, batches, wallS: round(wallS), floorS: round(floorS), ratio: round(wallS / floorS, 3) };
  });
  printTable(
    ['servers', 'batches', 'wallS', 'floorS', 'ratio', 'ratio per run', 'step overhead p50 ms', 'p99 ms'],
    points.map(({ servers, batches, wallS, floorS, ratio }) => [
      servers,
      batches,
      wallS,
      floorS,
      ratio,
      (walls.get(servers) ?? []).map((w, i) => round(w / (floors.get(servers)?.[i] ?? floorS), 3)).join(' '),
      round(percentile(overheads.get(servers) ?? [], 50), 1),
      round(percentile(overheads.get(servers) ?? [], 99), 1),
    ]),
  );
  const all = [...overheads.values()].flat();
  const stepOverheadMsP50 = round(percentile(all, 50), 1);
  // Targets: at most 1.05 of the floor at 100 and 1,000 servers; a step's overhead p50 at most 15 ms.
  reportFigures(
    {
      points: points.map(({ servers, wallS, floorS, ratio }) => ({ servers, wallS, floorS, ratio })),
      stepOverheadMsP50,
    },
    points.every((p) => p.ratio <= 1.05) && stepOverheadMsP50 <= 15,
  );
}
