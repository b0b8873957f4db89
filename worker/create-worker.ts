import type { NativeConnection, WorkerOptions } from '@temporalio/worker';
import { Worker } from '@temporalio/worker';
import type { ActivityDeps } from '../activities';
import { createActivities } from '../activities';

/** Path of the workflow bundle's entry, for `workflowsPath` and `bundleWorkflowCode`. */
export const workflowsPath = require.resolve('../workflows');

export interface BatonWorkerOptions {
  readonly connection: NativeConnection;
  readonly namespace: string;
  readonly taskQueue: string;
  readonly deps: ActivityDeps;
  /** A prebuilt bundle (tests build one per file); otherwise the worker bundles workflows/ itself. */
  readonly workflowBundle?: WorkerOptions['workflowBundle'];
  readonly tuning?: Pick<
    WorkerOptions,
    | 'maxConcurrentActivityTaskExecutions'
    | 'maxConcurrentWorkflowTaskExecutions'
    | 'maxCachedWorkflows'
    | 'maxConcurrentActivityTaskPolls'
    | 'maxConcurrentWorkflowTaskPolls'
    | 'maxTaskQueueActivitiesPerSecond'
    | 'shutdownGraceTime'
  >;
}

/** The one way a Baton worker is put together: production and tests differ only in the deps they pass. */
export function createBatonWorker(options: BatonWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    activities: createActivities(options.deps),
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath }),
    ...options.tuning,
  });
}
