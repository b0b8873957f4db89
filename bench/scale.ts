import { fetchRolloutEvents } from '../client/history';
import { noopSteps } from '../activities/fakes/simulated-fleet';
import type { RolloutSpecInput } from '../spec';
import type { rolloutWorkflow } from '../workflows';
import { pauseUpdate, resumeUpdate, statusQuery } from '../workflows/messages';
import type { SimulatedBench } from './simulated';
import { peakRssMb, round, simulatedSpec, startSimulatedBench } from './simulated';
import { printTable } from './table';
import { reportFigures } from './verdict';

const servers = Number(process.env.BATON_BENCH_SERVERS ?? 10_000);

interface ScaleRun {
  readonly config: string;
  readonly wallS: number;
  readonly runs: number;
  readonly maxEventsPerRun: number;
  readonly maxPendingActivities: number;
  readonly workerRssMb: number;
  readonly pause: string;
}

/**
 * One rollout of 10,000 simulated servers with no-op steps on one worker, twice: 10% at a time (groups of 1,000
 * servers, one activity per step each) and 10 at a time (1,000 batches: the history fills and the rollout
 * continues as new). Each must complete with every server upgraded exactly once, every run of its history under
 * Temporal's 10,240-event warning and pending activities far under Temporal's 2,000; in the second, a pause sent
 * after a few runs holds the rollout (no server starts) until resume. The worker's resident memory is sampled
 * throughout; the bench's client shares its process, so the figure is an upper bound.
 */
export async function runScale(): Promise<void> {
  const bench = await startSimulatedBench('scale', noopSteps, { maxConcurrentActivityTaskExecutions: 1_000 });
  const results: ScaleRun[] = [];
  try {
    results.push(
      await scaleRun(bench, 'batches of 10%', { strategy: { type: 'rolling', batchSize: '10%' } }),
    );
    results.push(await scaleRun(bench, 'batches of 10', { strategy: { type: 'rolling', batchSize: 10 } }));
  } finally {
    await bench.close();
  }
  printTable(
    [
      'servers',
      'config',
      'wallS',
      'runs',
      'max events per run',
      'max pending activities',
      'worker RSS MB',
      'pause',
    ],
    results.map((r) => [
      servers,
      r.config,
      r.wallS,
      r.runs,
      r.maxEventsPerRun,
      r.maxPendingActivities,
      r.workerRssMb,
      r.pause,
    ]),
  );
  const [tenPercent] = results;
  const maxEventsPerRun = Math.max(...results.map((r) => r.maxEventsPerRun));
  const workerRssMb = Math.max(...results.map((r) => r.workerRssMb));
  // Targets: every configuration completes (a run that does not throws before this), at most 10,240 events per
  // run, the worker's RSS at most 1,024 MB.
  reportFigures(
    { servers, wallS: tenPercent?.wallS, maxEventsPerRun, workerRssMb, configs: results },
    maxEventsPerRun <= 10_240 && workerRssMb <= 1_024,
  );
}

async function scaleRun(
  bench: SimulatedBench,
  config: string,
  overrides: Partial<RolloutSpecInput>,
): Promise<ScaleRun> {
  const backend = `scale-${bench.fleets.backendsCount()}`;
  const spec = simulatedSpec(bench.fleets, backend, servers, overrides);
  process.stderr.write(`scale: ${servers} servers, ${config}…\n`);
  const started = Date.now();
  let maxPendingActivities = 0;
  let pause = 'not sent (one run)';
  const { result, peakMb } = await peakRssMb(async () => {
    const handle = await bench.client.workflow.start<typeof rolloutWorkflow>('rolloutWorkflow', {
      args: [spec],
      taskQueue: bench.taskQueue,
      workflowId: `rollout/${backend}`,
    });
    const outcome = handle.result();
    let finished = false;
    void outcome.finally(() => (finished = true));
    const runIds = new Set<string>();
    let paused = false;
    while (!finished) {
      const description = await handle.describe().catch(() => undefined);
      maxPendingActivities = Math.max(maxPendingActivities, description?.raw.pendingActivities?.length ?? 0);
      if (description) runIds.add(description.runId);
      if (!paused && runIds.size >= 2 && description?.status.name === 'RUNNING') {
        paused = true;
        // A pause in a later run, with servers still to start: those in flight finish, no other starts until
        // resume. (A pause nearer the end holds too, before success, but would test less.)
        await handle.executeUpdate(pauseUpdate, { args: [{ by: 'bench', reason: 'scale' }] });
        const before = await handle.query(statusQuery);
        await new Promise((resolve) => setTimeout(resolve, 5_000));
        const after = await handle.query(statusQuery);
        const startedCount = (s: typeof before) => s.servers.filter((x) => x.step !== 'pending').length;
        if (after.phase !== 'paused') throw new Error(`paused, yet the rollout is ${after.phase}`);
        if (startedCount(after) !== startedCount(before)) throw new Error('servers started while paused');
        pause = `held 5 s in run ${runIds.size}, ${startedCount(after)} started`;
        await handle.executeUpdate(resumeUpdate, { args: [{ by: 'bench' }] });
      }
      await Promise.race([outcome, new Promise((resolve) => setTimeout(resolve, 1_000))]);
    }
    return {
      result: await outcome,
      events: await fetchRolloutEvents(bench.client, handle.workflowId, handle.firstExecutionRunId),
    };
  });
  const wallS = round((Date.now() - started) / 1000, 1);
  const runs: number[] = [];
  for (const event of result.events) {
    if (event.workflowExecutionStartedEventAttributes) runs.push(0);
    runs[runs.length - 1]++;
  }
  if (result.result.phase !== 'succeeded')
    throw new Error(`${config}: the rollout ended ${result.result.phase}`);
  const fleet = bench.fleets.servers(backend);
  if (!fleet.every((s) => s.version === 'v2' && s.upgrades === 1 && s.serving))
    throw new Error(`${config}: not every server was upgraded exactly once and put back in rotation`);
  return {
    config,
    wallS,
    runs: runs.length,
    maxEventsPerRun: Math.max(...runs),
    maxPendingActivities,
    workerRssMb: peakMb,
    pause,
  };
}
