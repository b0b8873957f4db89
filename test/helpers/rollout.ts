import type { ActivityDeps } from '../../activities';
import type { RolloutSpec } from '../../spec';
import { createBatonWorker } from '../../worker/create-worker';
import type { rolloutWorkflow } from '../../workflows';
import type { RolloutRun } from '../../workflows/continuation';
import type { RolloutResult } from '../../workflows/messages';
import type { TestTemporal } from './temporal';
import { uniqueTaskQueue, workflowBundle } from './temporal';

let runs = 0;

/** Runs one rollout to its end on the real Temporal server, with a worker wired to the given dependencies. */
export async function runRollout(
  temporal: TestTemporal,
  deps: ActivityDeps,
  spec: RolloutSpec,
): Promise<RolloutResult> {
  const { handle, stop } = await startRolloutInProcess(temporal, deps, spec);
  try {
    return await handle.result();
  } finally {
    await stop();
  }
}

/**
 * Starts a rollout on an in-process worker and hands back its handle, for tests that steer it or watch it while
 * it runs; `stop` shuts the worker down.
 */
export async function startRolloutInProcess(
  temporal: TestTemporal,
  deps: ActivityDeps,
  spec: RolloutSpec,
  run: RolloutRun = {},
) {
  const taskQueue = uniqueTaskQueue('steer');
  const worker = await createBatonWorker({
    connection: temporal.nativeConnection,
    namespace: temporal.namespace,
    taskQueue,
    deps,
    workflowBundle: await workflowBundle(),
  });
  const running = worker.run();
  runs++;
  const handle = await temporal.client.workflow.start<typeof rolloutWorkflow>('rolloutWorkflow', {
    args: Object.keys(run).length > 0 ? [spec, run] : [spec],
    taskQueue,
    workflowId: `rollout/${spec.target.name}/test-${process.pid}-${runs}-${Date.now()}`,
  });
  return {
    handle,
    stop: async () => {
      worker.shutdown();
      await running;
    },
  };
}

/** Polls `check` until it holds, failing after `timeoutMs`. */
export async function until(check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${check.toString()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
