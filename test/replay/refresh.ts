import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ensureTemporalCli } from '../../infra/components';
import type { rolloutWorkflow } from '../../workflows';
import { createBatonWorker } from '../../worker/create-worker';
import { connectTestTemporal, uniqueTaskQueue, workflowBundle } from '../helpers/temporal';
import { replayScenarios, stopSharedCluster } from './scenarios';

/**
 * `npm run replay:refresh`: runs replay scenarios on a real Temporal server and saves their histories. With no
 * argument, only the scenarios with no saved history yet: a saved history stands for rollouts already running,
 * and overwriting it would hide the very break replay tests exist to catch. Name scenarios (or pass --all) to
 * save them again on purpose, after a change that is meant to change histories and is guarded by patched() for
 * the rollouts already running (see README, "Changing workflow code").
 */
async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const unknown = args.filter((a) => a !== '--all' && !replayScenarios.some((s) => s.name === a));
  if (unknown.length > 0) {
    process.stderr.write(
      `replay:refresh: no scenario ${unknown.join(', ')}; expected --all or some of ${replayScenarios.map((s) => s.name).join(', ')}\n`,
    );
    process.exit(2);
  }
  const chosen = replayScenarios.filter((scenario) =>
    args.includes('--all')
      ? true
      : args.length > 0
        ? args.includes(scenario.name)
        : !existsSync(join(__dirname, 'histories', `${scenario.name}.json`)),
  );
  const temporal = await connectTestTemporal();
  try {
    for (const scenario of chosen) {
      const workflowId = `replay/${scenario.name}/${Date.now()}`;
      const recording = await scenario.record();
      try {
        const taskQueue = uniqueTaskQueue(`replay-${scenario.name}`);
        const worker = await createBatonWorker({
          connection: temporal.nativeConnection,
          namespace: temporal.namespace,
          taskQueue,
          deps: recording.deps,
          workflowBundle: await workflowBundle(),
        });
        const handle = await temporal.client.workflow.start<typeof rolloutWorkflow>('rolloutWorkflow', {
          args: scenario.run ? [recording.spec, scenario.run] : [recording.spec],
          taskQueue,
          workflowId,
        });
        const steer = recording.steer ?? ((h: typeof handle) => h.result());
        await worker.runUntil(steer(handle).catch(() => undefined));
      } finally {
        await recording.tearDown();
      }
      const path = join(__dirname, 'histories', `${scenario.name}.json`);
      // The CLI writes the canonical proto JSON that historyFromJSON and every Temporal tool read.
      const { stdout } = await promisify(execFile)(
        await ensureTemporalCli(),
        [
          'workflow',
          'show',
          '--workflow-id',
          workflowId,
          '--output',
          'json',
          '--address',
          temporal.address,
          '--namespace',
          temporal.namespace,
        ],
        { maxBuffer: 64 * 1024 * 1024 },
      );
      await writeFile(path, stdout);
      process.stdout.write(`saved ${path}\n`);
    }
  } finally {
    await stopSharedCluster();
    await temporal.close();
  }
}

void main();
