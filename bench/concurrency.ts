import type { WorkflowHandle } from '@temporalio/client';
import type { StepTimes } from '../activities/fakes/simulated-fleet';
import type { rolloutWorkflow } from '../workflows';
import type { RolloutStatus } from '../workflows/messages';
import { pauseUpdate, resumeUpdate } from '../workflows/messages';
import { peakRssMb, percentile, round, simulatedSpec, startSimulatedBench } from './simulated';
import { printTable } from './table';
import { reportFigures } from './verdict';

const rollouts = Number(process.env.BATON_BENCH_ROLLOUTS ?? 1_000);
const serversEach = 10;
const times: StepTimes = { detachMs: 0, drainMs: 200, upgradeMs: 300, verifyMs: 100, attachMs: 0 };

/**
 * 1,000 rollouts of 10 simulated servers each (steps as in `overhead`, two servers at a time), started together on
 * one worker. While they run, one rollout at a time, picked at random among the running, is paused and resumed
 * (each an update its sender waits on): the pause latency is how long an operator waits for "paused".
 */
export async function runConcurrency(): Promise<void> {
  const bench = await startSimulatedBench('concurrency', times, {
    maxConcurrentActivityTaskExecutions: 4_000,
    maxCachedWorkflows: 2_000,
    // Progress is capped below what this machine's server sustains (about 90 activities/s), so the workflow
    // tasks that answer operators never queue behind a backlog (see bench/README.md).
    maxTaskQueueActivitiesPerSecond: Number(process.env.BATON_BENCH_ACTIVITY_RATE ?? 40),
  });
  try {
    process.stderr.write(`concurrency: starting ${rollouts} rollouts of ${serversEach} servers…\n`);
    const started = Date.now();
    const handles: Array<WorkflowHandle<typeof rolloutWorkflow>> = [];
    const { result, peakMb } = await peakRssMb(async () => {
      for (let i = 0; i < rollouts; i += 50) {
        handles.push(
          ...(await Promise.all(
            Array.from({ length: Math.min(50, rollouts - i) }, (_, j) =>
              bench.client.workflow.start<typeof rolloutWorkflow>('rolloutWorkflow', {
                args: [
                  simulatedSpec(bench.fleets, `c-${i + j}`, serversEach, {
                    strategy: { type: 'rolling', batchSize: 2 },
                  }),
                ],
                taskQueue: bench.taskQueue,
                workflowId: `rollout/c-${i + j}`,
              }),
            ),
          )),
        );
      }
      const startedAllS = (Date.now() - started) / 1000;
      let running = handles.length;
      const outcomes = handles.map((h) =>
        h.result().then(
          (r) => {
            running--;
            return r.phase;
          },
          () => {
            running--;
            return 'failed';
          },
        ),
      );
      const pauses: number[] = [];
      const resumes: number[] = [];
      const pausesFailed: string[] = [];
      let pausesRefusedFinished = 0;
      let sampling = true;
      const sampler = (async () => {
        // Until most are done: later samples would only see an idle system.
        while (sampling && running > rollouts / 10) {
          const handle = handles[Math.floor(Math.random() * handles.length)];
          const sent = Date.now();
          let answer: RolloutStatus;
          try {
            answer = await handle.executeUpdate(pauseUpdate, { args: [{ by: 'bench' }] });
          } catch (error) {
            // Refused because the rollout has just finished is the right answer, and no pause latency; any other
            // failure (a timeout, a refusal of a running rollout) is a failed pause, counted and timed.
            const finished = (await handle.describe()).status.name !== 'RUNNING';
            if (finished) pausesRefusedFinished++;
            else {
              pausesFailed.push(`${(error as Error).message}`);
              pauses.push(Date.now() - sent);
            }
            continue;
          }
          pauses.push(Date.now() - sent);
          // The answer is the status the pause left: it must say paused.
          if (answer.phase !== 'paused') pausesFailed.push(`the pause answered ${answer.phase}`);
          const resumeSent = Date.now();
          try {
            await handle.executeUpdate(resumeUpdate, { args: [{ by: 'bench' }] });
            resumes.push(Date.now() - resumeSent);
          } catch {
            // Paused with its last servers in flight: it finished before the resume, as it should.
          }
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      })();
      const phases = await Promise.all(outcomes);
      sampling = false;
      await sampler;
      return { phases, pauses, resumes, startedAllS, pausesFailed, pausesRefusedFinished };
    });
    const wallS = (Date.now() - started) / 1000;
    const completed = result.phases.filter((p) => p === 'succeeded').length;
    const pauseP99Ms = Math.round(percentile(result.pauses, 99));
    printTable(
      [
        'rollouts',
        'servers each',
        'completed',
        'wallS',
        'all started after S',
        'pauses sent',
        'pause p50 ms',
        'pause p99 ms',
        'resume p99 ms',
        'worker RSS MB',
      ],
      [
        [
          rollouts,
          serversEach,
          completed,
          round(wallS, 1),
          round(result.startedAllS, 1),
          result.pauses.length,
          Math.round(percentile(result.pauses, 50)),
          pauseP99Ms,
          Math.round(percentile(result.resumes, 99)),
          peakMb,
        ],
      ],
    );
    for (const failure of result.pausesFailed) process.stderr.write(`failed pause: ${failure}\n`);
    // Targets: every rollout completes; pause p99 at most 1,000 ms; no pause fails.
    reportFigures(
      {
        rollouts,
        completed,
        wallS: round(wallS, 1),
        pauseP99Ms,
        pausesSent: result.pauses.length + result.pausesRefusedFinished,
        pausesFailed: result.pausesFailed.length,
        pausesRefusedFinished: result.pausesRefusedFinished,
        workerRssMb: peakMb,
      },
      completed === rollouts && pauseP99Ms <= 1_000 && result.pausesFailed.length === 0,
    );
  } finally {
    await bench.close();
  }
}
