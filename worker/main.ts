import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import type { LogEntry } from '@temporalio/worker';
import { realActivityDeps } from '../activities';
import { ConfigError, loadWorkerConfig } from './config';
import { createBatonWorker } from './create-worker';

/** One JSON object per line: what log collectors (Loki, CloudWatch, Stackdriver) ingest without parsing rules. */
function jsonLine(entry: LogEntry): void {
  const { level, message, meta, timestampNanos } = entry;
  process.stdout.write(
    `${JSON.stringify({ time: new Date(Number(timestampNanos / 1_000_000n)).toISOString(), level, message, ...meta })}\n`,
  );
}

async function main(): Promise<void> {
  const config = loadWorkerConfig();
  Runtime.install({
    logger: new DefaultLogger(config.logLevel, jsonLine),
    // SIGINT and SIGTERM begin a graceful shutdown: polling stops, running activities get shutdownGraceTime.
    shutdownSignals: ['SIGINT', 'SIGTERM'],
    telemetryOptions: config.metricsAddress
      ? { metrics: { prometheus: { bindAddress: config.metricsAddress } } }
      : {},
  });
  const connection = await NativeConnection.connect(config.connection);
  try {
    const worker = await createBatonWorker({
      connection,
      namespace: config.namespace,
      taskQueue: config.taskQueue,
      deps: realActivityDeps(),
      tuning: {
        shutdownGraceTime: config.shutdownGraceTime,
        maxConcurrentActivityTaskExecutions: config.maxConcurrentActivities,
        maxConcurrentWorkflowTaskExecutions: config.maxConcurrentWorkflowTasks,
        ...(config.maxActivitiesPerSecond !== undefined
          ? { maxTaskQueueActivitiesPerSecond: config.maxActivitiesPerSecond }
          : {}),
      },
    });
    Runtime.instance().logger.info('Baton worker started', {
      address: config.connection.address,
      namespace: config.namespace,
      taskQueue: config.taskQueue,
      metrics: config.metricsAddress ?? 'off',
    });
    await worker.run();
  } finally {
    await connection.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(
    `baton worker: ${error instanceof ConfigError ? error.message : String((error as Error)?.stack ?? error)}\n`,
  );
  process.exit(error instanceof ConfigError ? 2 : 1);
});
