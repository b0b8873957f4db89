import type { Client } from '@temporalio/client';
import { countStarts, hostVersions } from '../../infra/fleet/hosts';
import type { LocalFleet } from '../../infra/fleet/local-fleet';
import { startLoad } from '../../infra/load';
import { delay } from '../../infra/processes';
import { parseRolloutSpec } from '../../spec';
import type { rolloutWorkflow } from '../../workflows';
import type { ServerStep } from '../../workflows/messages';
import { statusQuery } from '../../workflows/messages';
import { startWorkerProcess } from '../helpers/worker';

/** The step kinds a worker is killed in, one case each. */
export const crashSteps = [
  'detach',
  'drain',
  'upgrade',
  'verify',
  'attach',
] as const satisfies readonly ServerStep[];
export type CrashStep = ServerStep;

export type CrashStrategy = 'rolling' | 'canary' | 'blue-green';

/**
 * Each strategy's cases: rolling and canary move servers in place through the five steps; blue/green creates
 * a new set (created, verified, switched to in one batch) and retires the old one (drained, then destroyed).
 */
export const crashMatrix: ReadonlyArray<{ strategy: CrashStrategy; steps: readonly ServerStep[] }> = [
  { strategy: 'rolling', steps: crashSteps },
  { strategy: 'canary', steps: crashSteps },
  { strategy: 'blue-green', steps: ['create', 'verify', 'retired'] },
];

function crashSpec(fleet: LocalFleet, strategy: CrashStrategy, version: string, name: string) {
  if (strategy === 'blue-green')
    return parseRolloutSpec({
      ...fleet.spec({ version, strategy: { type: 'blue-green', scaleDownDelay: '1s' } }),
      target: fleet.provisionedTarget(name),
    });
  if (strategy === 'canary')
    return parseRolloutSpec(
      fleet.spec(
        {
          version,
          strategy: {
            type: 'canary',
            steps: [{ setWeight: 34 }, { analysis: { window: '2s', minRequests: 5 } }],
          },
        },
        name,
      ),
    );
  return parseRolloutSpec(fleet.spec({ version, strategy: { type: 'rolling', batchSize: 1 } }, name));
}

export interface CrashCase {
  readonly strategy: CrashStrategy;
  readonly step: CrashStep;
  /** The server whose step was showing when the worker was killed. */
  readonly killedAt: string;
  readonly phase: string;
  readonly sent: number;
  readonly failedRequests: number;
  /** Starts of the new version beyond one per server. */
  readonly duplicateUpgrades: number;
  readonly allOnNewVersion: boolean;
  readonly durationS: number;
}

/**
 * One case of the crash matrix: a rolling rollout of a real fleet under load, run by a worker process that is
 * killed with SIGKILL as soon as some server is in `step`, then replaced by a new worker process. Reports
 * whether the rollout finished, how many requests failed, and whether any server started the new version twice.
 */
export async function runCrashCase(options: {
  strategy?: CrashStrategy;
  step: CrashStep;
  fleet: LocalFleet;
  client: Client;
  temporal: { address: string; namespace: string };
  taskQueue: string;
  version: string;
}): Promise<CrashCase> {
  const { fleet, step } = options;
  const strategy = options.strategy ?? 'rolling';
  const env = {
    TEMPORAL_ADDRESS: options.temporal.address,
    TEMPORAL_NAMESPACE: options.temporal.namespace,
    BATON_TASK_QUEUE: options.taskQueue,
  };
  const load = startLoad({ url: `${fleet.haproxy.frontendUrl}/?delay=200`, ratePerSecond: 60 });
  const started = Date.now();
  let worker = await startWorkerProcess(env);
  try {
    const name = `crash-${strategy}-${step}`;
    const spec = crashSpec(fleet, strategy, options.version, name);
    const handle = await options.client.workflow.start<typeof rolloutWorkflow>('rolloutWorkflow', {
      args: [spec],
      taskQueue: options.taskQueue,
      workflowId: `rollout/${name}/${Date.now()}`,
    });
    // Kill the worker the moment a server (after the first) shows the step: mid-rollout, mid-step.
    let killedAt = '';
    const deadline = Date.now() + 120_000;
    while (!killedAt) {
      if (Date.now() > deadline) throw new Error(`no server ever showed ${step}`);
      const status = await handle.query(statusQuery).catch(() => undefined);
      const server = status?.servers.slice(1).find((s) => s.step === step);
      if (server) killedAt = server.name;
      else await delay(10);
    }
    await worker.crash();
    worker = await startWorkerProcess(env);
    const result = await handle.result();
    await delay(300);
    const stats = await load.stop();
    const starts = (await countStarts(fleet.dir)).filter((s) => s.version === options.version);
    const versions = Object.values(await hostVersions(fleet.dir));
    return {
      strategy,
      step,
      killedAt,
      phase: result.phase,
      sent: stats.sent,
      failedRequests: stats.failed,
      duplicateUpgrades: starts.length - new Set(starts.map((s) => s.name)).size,
      allOnNewVersion: versions.every((v) => v === options.version),
      durationS: Math.round((Date.now() - started) / 100) / 10,
    };
  } finally {
    await load.stop().catch(() => undefined);
    await worker.stop();
  }
}
