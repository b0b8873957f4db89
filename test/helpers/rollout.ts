import type { ActivityDeps } from '../../activities';
import type { RolloutSpec } from '../../spec';
import { createBatonWorker } from '../../worker/create-worker';
import type { rolloutWorkflow } from '../../workflows';
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
  const taskQueue = uniqueTaskQueue('rollout');
  const worker = await createBatonWorker({
    connection: temporal.nativeConnection,
    namespace: temporal.namespace,
    taskQueue,
    deps,
    workflowBundle: await workflowBundle(),
  });
  runs++;
  return worker.runUntil(
    temporal.client.workflow.execute<typeof rolloutWorkflow>('rolloutWorkflow', {
      args: [spec],
      taskQueue,
      workflowId: `rollout/${spec.target.name}/test-${process.pid}-${runs}-${Date.now()}`,
    }),
  );
}
