import { fetchRolloutEvents } from '../client/history';
import { noopSteps } from '../activities/fakes/simulated-fleet';
import type { rolloutWorkflow } from '../workflows';
import { pauseUpdate, resumeUpdate, statusQuery } from '../workflows/messages';
import { peakRssMb, round, simulatedSpec, startSimulatedBench } from './simulated';
import { printTable } from './table';

const servers = Number(process.env.BATON_BENCH_SERVERS ?? 10_000);

/**
 * One rollout of 10,000 simulated servers with no-op steps, 10% at a time, on one worker: it completes; every run
 * of its history stays under Temporal's 10,240-event warning (the rollout continues as new with a cursor);
 * pending activities stay far under Temporal's 2,000; a pause sent once a few runs went by holds the rollout
 * across runs until resume. The worker's resident memory is sampled throughout (the bench's client shares its
 * process, so the figure is an upper bound).
 */
export async function runScale(): Promise<void> {
  const bench = await startSimulatedBench('scale', noopSteps, {
    maxConcurrentActivityTaskExecutions: 1_000,
  });
  try {
    const spec = simulatedSpec(bench.fleets, 'scale', servers);
    process.stderr.write(`scale: ${servers} servers, batches of 10%…\n`);
    const started = Date.now();
    let maxPendingActivities = 0;
    let pause: { heldS: number; startedBefore: number; startedAfter: number } | undefined;
    const { result, peakMb } = await peakRssMb(async () => {
      const handle = await bench.client.workflow.start<typeof rolloutWorkflow>('rolloutWorkflow', {
        args: [spec],
        taskQueue: bench.taskQueue,
        workflowId: 'rollout/scale',
      });
      const outcome = handle.result();
      let finished = false;
      void outcome.finally(() => (finished = true));
      let runsSeen = 1;
      while (!finished) {
        const description = await handle.describe().catch(() => undefined);
        maxPendingActivities = Math.max(
          maxPendingActivities,
          description?.raw.pendingActivities?.length ?? 0,
        );
        if (description && description.runId !== handle.firstExecutionRunId) runsSeen++;
        if (!pause && description && description.runId !== handle.firstExecutionRunId && runsSeen > 3) {
          // A pause in a later run: the servers in flight finish, no other starts until resume.
          await handle.executeUpdate(pauseUpdate, { args: [{ by: 'bench', reason: 'scale' }] });
          const before = await handle.query(statusQuery);
          await new Promise((resolve) => setTimeout(resolve, 5_000));
          const after = await handle.query(statusQuery);
          const startedCount = (s: typeof before) => s.servers.filter((x) => x.step !== 'pending').length;
          if (after.phase !== 'paused') throw new Error(`paused, yet the rollout is ${after.phase}`);
          pause = { heldS: 5, startedBefore: startedCount(before), startedAfter: startedCount(after) };
          await handle.executeUpdate(resumeUpdate, { args: [{ by: 'bench' }] });
        }
        await Promise.race([outcome, new Promise((resolve) => setTimeout(resolve, 1_000))]);
      }
      const result = await outcome;
      return {
        result,
        events: await fetchRolloutEvents(bench.client, handle.workflowId, handle.firstExecutionRunId),
      };
    });
    const wallS = (Date.now() - started) / 1000;
    const runs: number[] = [];
    for (const event of result.events) {
      if (event.workflowExecutionStartedEventAttributes) runs.push(0);
      runs[runs.length - 1]++;
    }
    const upgraded = bench.fleets.servers('scale');
    const once = upgraded.every((s) => s.version === 'v2' && s.upgrades === 1 && s.serving);
    if (result.result.phase !== 'succeeded') throw new Error(`the rollout ended ${result.result.phase}`);
    if (!once) throw new Error('not every server was upgraded exactly once and back in rotation');
    if (pause && pause.startedAfter !== pause.startedBefore) throw new Error('servers started while paused');
    printTable(
      [
        'servers',
        'wallS',
        'runs',
        'max events per run',
        'max pending activities',
        'worker RSS MB',
        'pause held',
      ],
      [
        [
          servers,
          round(wallS, 1),
          runs.length,
          Math.max(...runs),
          maxPendingActivities,
          peakMb,
          pause ? `${pause.heldS} s, ${pause.startedBefore} started before and after` : 'not sent',
        ],
      ],
    );
    process.stdout.write(
      `${JSON.stringify({ servers, wallS: round(wallS, 1), maxEventsPerRun: Math.max(...runs), workerRssMb: peakMb, runs: runs.length, maxPendingActivities })}\n`,
    );
  } finally {
    await bench.close();
  }
}
