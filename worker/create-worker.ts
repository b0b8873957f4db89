import { existsSync } from 'node:fs';
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

/**
 * A workflow bundle built ahead of time (`bundleWorkflowCode`, written to a file), which a worker then loads
 * instead of bundling workflows/ itself at start, seconds of webpack per worker: for a deployment's image, and for
 * the test runner, which starts many workers from one bundle.
 */
export const prebuiltBundleVariable = 'BATON_WORKFLOW_BUNDLE';

function prebuiltBundle(env: NodeJS.ProcessEnv): WorkerOptions['workflowBundle'] | undefined {
  const codePath = env[prebuiltBundleVariable];
  if (codePath === undefined || codePath === '') return undefined;
  if (!existsSync(codePath))
    throw new Error(
      `${prebuiltBundleVariable}: no workflow bundle at ${codePath} (expected a file bundleWorkflowCode wrote)`,
    );
  return { codePath };
}

/** The one way a Baton worker is put together: production and tests differ only in the deps they pass. */
export function createBatonWorker(options: BatonWorkerOptions): Promise<Worker> {
  const workflowBundle = options.workflowBundle ?? prebuiltBundle(process.env);
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    activities: createActivities(options.deps),
    ...(workflowBundle ? { workflowBundle } : { workflowsPath }),
    ...options.tuning,
  });
}
