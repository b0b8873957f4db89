import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { NativeConnectionOptions } from '@temporalio/worker';
import { z } from 'zod';
import { defaultTaskQueue } from '../workflows/messages';

const logLevels = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'] as const;

/** Baton's own worker settings; the Temporal connection comes from the same variables and profiles as the `temporal` CLI. */
const workerEnv = z.object({
  BATON_TASK_QUEUE: z.string().min(1).default(defaultTaskQueue),
  BATON_LOG_LEVEL: z
    .string()
    .transform((v) => v.toUpperCase())
    .pipe(z.enum(logLevels, { error: `expected one of ${logLevels.join(', ')}` }))
    .default('INFO'),
  BATON_METRICS_ADDRESS: z
    .string()
    .regex(/^[^:\s]+:\d{1,5}$/, 'expected host:port such as 0.0.0.0:9464')
    .optional(),
  BATON_SHUTDOWN_GRACE: z
    .string()
    .regex(/^\d+(ms|s|m)$/, 'expected a duration such as "30s"')
    .default('30s'),
  BATON_MAX_CONCURRENT_ACTIVITIES: z.coerce.number().int().min(1).default(200),
  BATON_MAX_CONCURRENT_WORKFLOW_TASKS: z.coerce.number().int().min(1).default(40),
  BATON_MAX_ACTIVITIES_PER_SECOND: z.coerce.number().positive().optional(),
});

export interface WorkerConfig {
  readonly connection: NativeConnectionOptions;
  readonly namespace: string;
  readonly taskQueue: string;
  readonly logLevel: (typeof logLevels)[number];
  readonly metricsAddress?: string;
  readonly shutdownGraceTime: string;
  readonly maxConcurrentActivities: number;
  readonly maxConcurrentWorkflowTasks: number;
  /** A cap on the task queue's activities per second, enforced by the server for every worker of the queue. */
  readonly maxActivitiesPerSecond?: number;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * Reads the worker's configuration from the environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY,
 * TEMPORAL_TLS_* and TEMPORAL_PROFILE / TEMPORAL_CONFIG_FILE as the `temporal` CLI reads them, plus BATON_*.
 */
export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const parsed = workerEnv.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(
      `invalid worker environment:\n${parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n')}`,
    );
  }
  const connect = loadClientConnectConfig({ overrideEnvVars: env as Record<string, string> });
  const connection: NativeConnectionOptions = { ...connect.connectionOptions };
  if (!connection.address) connection.address = 'localhost:7233';
  return {
    connection,
    namespace: connect.namespace ?? 'default',
    taskQueue: parsed.data.BATON_TASK_QUEUE,
    logLevel: parsed.data.BATON_LOG_LEVEL,
    ...(parsed.data.BATON_METRICS_ADDRESS ? { metricsAddress: parsed.data.BATON_METRICS_ADDRESS } : {}),
    shutdownGraceTime: parsed.data.BATON_SHUTDOWN_GRACE,
    maxConcurrentActivities: parsed.data.BATON_MAX_CONCURRENT_ACTIVITIES,
    maxConcurrentWorkflowTasks: parsed.data.BATON_MAX_CONCURRENT_WORKFLOW_TASKS,
    ...(parsed.data.BATON_MAX_ACTIVITIES_PER_SECOND !== undefined
      ? { maxActivitiesPerSecond: parsed.data.BATON_MAX_ACTIVITIES_PER_SECOND }
      : {}),
  };
}
