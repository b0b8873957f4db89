import { fetchRolloutEvents } from '../client/history';
import type { rolloutWorkflow } from '../workflows';
import type { StepTimes } from '../activities/fakes/simulated-fleet';
import { percentile, round, simulatedSpec, startSimulatedBench, stepOverheadsMs } from './simulated';
import { printTable } from './table';

const times: StepTimes = { detachMs: 0, drainMs: 200, upgradeMs: 300, verifyMs: 100, attachMs: 0 };
const stepMs = times.detachMs + times.drainMs + times.upgradeMs + times.verifyMs + times.attachMs;
const sizes = (process.env.BATON_BENCH_SIZES ?? '10,100,1000').split(',').map(Number);

/**
 * Baton's own overhead: simulated fleets whose steps take fixed, known times (detach 0, drain 200 ms, upgrade
 * 300 ms, verify 100 ms, attach 0), rolled 10% at a time, one rollout per size on one worker and the local dev
 * server. The floor is the critical path: batches × the step times. Each step's overhead is read from the
 * history (see stepOverheadsMs).
 */
export async function runOverhead(): Promise<void> {
  const bench = await startSimulatedBench('overhead', times, { maxConcurrentActivityTaskExecutions: 2_000 });
  const points: Array<{ servers: number; wallS: number; floorS: number; ratio: number }> = [];
  const rows: Array<Array<string | number>> = [];
  const allOverheads: number[] = [];
  try {
    for (const servers of sizes) {
      const spec = simulatedSpec(bench.fleets, `overhead-${servers}`, servers);
      const batches = Math.ceil(servers / Math.ceil(servers / 10));
      process.stderr.write(`overhead: ${servers} servers, ${batches} batches…\n`);
      const started = Date.now();
      const handle = await bench.client.workflow.start<typeof rolloutWorkflow>('rolloutWorkflow', {
        args: [spec],
        taskQueue: bench.taskQueue,
        workflowId: `rollout/overhead-${servers}`,
      });
      const result = await handle.result();
      const wallS = (Date.now() - started) / 1000;
      if (result.phase !== 'succeeded')
        throw new Error(`the ${servers}-server rollout ended ${result.phase}`);
      const events = await fetchRolloutEvents(bench.client, handle.workflowId, handle.firstExecutionRunId);
      const overheads = stepOverheadsMs(events, bench.fleets);
      allOverheads.push(...overheads);
      const floorS = (batches * stepMs) / 1000;
      points.push({ servers, wallS: round(wallS), floorS, ratio: round(wallS / floorS, 3) });
      const runs = events.filter((e) => e.workflowExecutionStartedEventAttributes).length;
      rows.push([
        servers,
        batches,
        round(wallS),
        floorS,
        round(wallS / floorS, 3),
        round(percentile(overheads, 50), 1),
        round(percentile(overheads, 99), 1),
        runs,
      ]);
    }
  } finally {
    await bench.close();
  }
  printTable(
    ['servers', 'batches', 'wallS', 'floorS', 'ratio', 'step overhead p50 ms', 'p99 ms', 'runs'],
    rows,
  );
  process.stdout.write(
    `${JSON.stringify({ points, stepOverheadMsP50: round(percentile(allOverheads, 50), 1) })}\n`,
  );
}
