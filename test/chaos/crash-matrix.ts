import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { HaproxyTrafficProvider } from '../../activities/haproxy/traffic-provider';
import { countStarts, hostVersions, upgradeCommands } from '../../infra/fleet/hosts';
import type { LocalFleet } from '../../infra/fleet/local-fleet';
import { startLoad } from '../../infra/load';
import { delay } from '../../infra/processes';
import type { RolloutSpec } from '../../spec';
import { parseRolloutSpec } from '../../spec';
import type { rolloutWorkflow } from '../../workflows';
import type { ServerStep } from '../../workflows/messages';
import { statusQuery } from '../../workflows/messages';
import type { StepWork } from '../helpers/kill-landed';
import type { HoldingSocketProxy } from '../helpers/faults';
import { startHoldingSocketProxy } from '../helpers/faults';
import { killLanded } from '../helpers/kill-landed';
import { startWorkerProcess } from '../helpers/worker';

/** The step kinds a worker is killed in, one case each. */
export const crashSteps = [
  'detach',
  'drain',
  'upgrade',
  'verify',
  'attach',
] as const satisfies readonly ServerStep[];
/**
 * A server's step, or a moment of the rollout as a whole: a canary's weights just set (`set-weight`), its analysis
 * window running (`analysis`), blue/green's traffic just switched (`switch`).
 */
export type CrashStep = ServerStep | 'set-weight' | 'analysis' | 'switch';

export type CrashStrategy =
  | 'rolling'
  | 'rolling-groups'
  | 'rolling-replace'
  | 'rolling-rollback'
  | 'recreate'
  | 'recreate-rollback'
  | 'canary'
  | 'canary-rollback'
  | 'blue-green'
  | 'blue-green-rollback'
  | 'surge'
  | 'surge-rollback';

const rollbacks: readonly CrashStrategy[] = [
  'rolling-rollback',
  'recreate-rollback',
  'canary-rollback',
  'blue-green-rollback',
  'surge-rollback',
];

/** The version a crash case's fleet knows as broken: it answers its health check with 500. */
export const brokenVersion = (version: string) => `${version}-broken`;

/**
 * Each strategy's cases: rolling and canary move servers in place through the five steps; blue/green creates
 * a new set (created, verified, switched to in one batch) and retires the old one (drained, then destroyed).
 */
export const crashMatrix: ReadonlyArray<{
  strategy: CrashStrategy;
  steps: readonly CrashStep[];
  /** The fleet's size: groups of two need two groups. */
  servers: number;
}> = [
  { strategy: 'rolling', steps: crashSteps, servers: 3 },
  // Two servers at a time as groups: detach and attach are local activities inside a workflow task; drain,
  // upgrade and verify one activity for the group.
  { strategy: 'rolling-groups', steps: crashSteps, servers: 4 },
  { strategy: 'canary', steps: [...crashSteps, 'set-weight', 'analysis'], servers: 3 },
  // Every server at once: out of rotation together, upgraded together, verified together.
  { strategy: 'recreate', steps: ['drain', 'upgrade', 'verify'], servers: 3 },
  { strategy: 'blue-green', steps: ['create', 'verify', 'switch', 'retired'], servers: 3 },
  // A new server created and verified before each old one is drained and destroyed.
  { strategy: 'rolling-replace', steps: ['create', 'verify', 'drain', 'retired'], servers: 3 },
  { strategy: 'surge', steps: ['create', 'verify', 'drain', 'retired'], servers: 3 },
  // The new version fails its verification and everything is put back on v1: the worker dies while it is.
  { strategy: 'rolling-rollback', steps: ['restoring'], servers: 3 },
  { strategy: 'recreate-rollback', steps: ['restoring'], servers: 3 },
  { strategy: 'canary-rollback', steps: ['restoring'], servers: 3 },
  // The new servers fail their checks and are destroyed; the old ones never left rotation.
  { strategy: 'blue-green-rollback', steps: ['restoring'], servers: 3 },
  { strategy: 'surge-rollback', steps: ['restoring'], servers: 3 },
];

/**
 * The cases `npm test` runs; `npm run bench -- crash-matrix` runs them all. Every strategy is killed in at least
 * one step and every step in at least one strategy: each strategy takes, in order, a step no earlier case covered
 * (its first when all are), then each step still missing is taken in the first strategy that has it. Which case
 * covers which step moves with the matrix, so a new strategy or step joins the sample by itself.
 */
export function crashSample(
  matrix: typeof crashMatrix = crashMatrix,
): Array<{ strategy: CrashStrategy; step: CrashStep; servers: number }> {
  const covered = new Set<CrashStep>();
  const sample: Array<{ strategy: CrashStrategy; step: CrashStep; servers: number }> = [];
  for (const { strategy, steps, servers } of matrix) {
    const step = steps.find((s) => !covered.has(s)) ?? steps[0];
    if (step === undefined) continue;
    covered.add(step);
    sample.push({ strategy, step, servers });
  }
  for (const { strategy, steps, servers } of matrix)
    for (const step of steps)
      if (!covered.has(step)) {
        covered.add(step);
        sample.push({ strategy, step, servers });
      }
  return sample;
}

/** Recreate stops every server at once: its requests fail by design, and the strategy says so. */
export const dropsRequestsByDesign = (strategy: CrashStrategy) => strategy.startsWith('recreate');

/** The phase a case's rollout ends in, and the version every server runs then. */
export function expectedEnd(strategy: CrashStrategy, version: string) {
  return rollbacks.includes(strategy)
    ? { phase: 'rolled-back', version: 'v1' }
    : { phase: 'succeeded', version };
}

function crashSpec(fleet: LocalFleet, strategy: CrashStrategy, version: string, name: string) {
  const rollsBack = rollbacks.includes(strategy);
  const rollingTo = rollsBack ? brokenVersion(version) : version;
  // A broken version fails its checks within 3 s, and the rollback begins.
  const verify = rollsBack ? { verify: { http: { passes: 3, interval: '200ms', timeout: '3s' } } } : {};
  const type = strategy.replace(/-rollback$/, '');
  if (type === 'blue-green' || type === 'surge' || strategy === 'rolling-replace')
    return parseRolloutSpec({
      ...fleet.spec({
        version: rollingTo,
        ...verify,
        strategy:
          type === 'blue-green'
            ? { type: 'blue-green', scaleDownDelay: '1s' }
            : type === 'surge'
              ? { type: 'surge', batchSize: 1 }
              : { type: 'rolling', method: 'replace', batchSize: 1 },
      }),
      target: fleet.provisionedTarget(name),
    });
  if (type === 'canary')
    return parseRolloutSpec(
      fleet.spec(
        {
          version: rollingTo,
          ...verify,
          strategy: {
            type: 'canary',
            steps: [{ setWeight: 34 }, { analysis: { window: '2s', minRequests: 5 } }],
          },
        },
        name,
      ),
    );
  if (type === 'recreate')
    return parseRolloutSpec(
      fleet.spec({ version: rollingTo, ...verify, strategy: { type: 'recreate' } }, name),
    );
  if (strategy === 'rolling-rollback')
    return parseRolloutSpec(
      fleet.spec({ version: rollingTo, ...verify, strategy: { type: 'rolling', batchSize: 1 } }, name),
    );
  return parseRolloutSpec(
    fleet.spec(
      { version, strategy: { type: 'rolling', batchSize: strategy === 'rolling-groups' ? 2 : 1 } },
      name,
    ),
  );
}

/**
 * Waits for the moment to kill the worker in a step that is not one command (see heldCommand): a server after the
 * first showing the step in the status query, or the analysis window half a second in. A group's local attach runs
 * inside a workflow task, over before a query can show it, so HAProxy is watched for it instead: the first group's
 * first server back in rotation (its attach just ran, before the workflow task that ran it is recorded).
 */
async function killMoment(
  strategy: CrashStrategy,
  step: CrashStep,
  fleet: LocalFleet,
  status: () => Promise<CrashStatus | undefined>,
): Promise<string> {
  const deadline = Date.now() + 120_000;
  const traffic = new HaproxyTrafficProvider(fleet.haproxy.socket, 'web');
  const groupAttach = strategy === 'rolling-groups' && step === 'attach';
  let leftRotation = false;
  for (;;) {
    if (Date.now() > deadline) throw new Error(`the rollout never reached ${step}`);
    if (step === 'analysis') {
      if (((await status())?.canary?.weight ?? 0) > 0) {
        await delay(500);
        return 'canary';
      }
    } else if (groupAttach) {
      const state = (await traffic.traffic('web-1')).status;
      if (state !== 'UP') leftRotation = true;
      else if (leftRotation) return 'web-1';
    } else {
      // A rollback puts back the first server, which is the one that failed.
      const servers = (await status())?.servers.slice(step === 'restoring' ? 0 : 1);
      const server = servers?.find((s) => s.step === step);
      if (server) return server.name;
    }
    await delay(groupAttach ? 2 : 10);
  }
}

type CrashStatus = {
  servers: ReadonlyArray<{ name: string; step: string }>;
  canary?: { weight: number };
};

/**
 * The work each step's kill must cut off: its activities (a group's detach and attach are local activities), the
 * analysis window's timer; a rollback's kill lands in any of its activities.
 */
function stepWork(strategy: CrashStrategy, step: CrashStep): StepWork {
  if (rollbacks.includes(strategy)) return { activities: /./ };
  const activities: Partial<Record<CrashStep, RegExp>> = {
    detach: /^detachServers?$/,
    drain: /^drainServers?$/,
    upgrade: /^upgradeServers?$/,
    verify: /^(verifyServers?|awaitHealthy)$/,
    attach: /^attachServers?$/,
    'set-weight': /^setServerWeights$/,
    switch: /^switchTraffic$/,
    create: /^(createServer|awaitHealthy)$/,
    restoring: /./,
  };
  // A retired server stays out of rotation until it is destroyed: the kill lands in that state when the next
  // worker destroys (or removes) it.
  if (step === 'retired') return { endedBy: /^(removeServer|destroyServer)$/ };
  // A group after the first leaves rotation as the group before it comes back: in one hand-over.
  if (step === 'detach') return { activities: /^(detachServers?|handOverServers)$/ };
  return step === 'analysis' ? { timer: true } : { activities: activities[step] ?? /./ };
}

export interface CrashCase {
  readonly strategy: CrashStrategy;
  readonly step: CrashStep;
  /** The server whose step was showing when the worker was killed. */
  readonly killedAt: string;
  /** Whether the history shows the kill cut the step's work off (see killLanded), and what shows it. */
  readonly landed: boolean;
  readonly landing: string;
  readonly phase: string;
  readonly sent: number;
  readonly failedRequests: number;
  /** The phase the case expects: succeeded, or rolled-back for a rollback case. */
  readonly expectedPhase: string;
  /** Starts of the rollout's version beyond one per server. */
  readonly duplicateUpgrades: number;
  /**
   * Upgrade commands run for a server to a version beyond the first, from the command's own log: the rollout's
   * version, and for a rollback the way back.
   */
  readonly repeatedCommands: number;
  /** Every server on the version the rollout should leave it on: the new one, or the old after a rollback. */
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
  let held: { proxy: HoldingSocketProxy; command: RegExp; server: string } | undefined;
  let worker = await startWorkerProcess(env);
  try {
    const name = `crash-${strategy}-${step}`;
    const command = rollbacks.includes(strategy) ? undefined : heldCommand(strategy, step);
    if (command) {
      const proxy = await startHoldingSocketProxy(fleet.haproxy.socket, join(fleet.dir, 'admin-held.sock'));
      held = { proxy, ...command };
    }
    const spec = throughSocket(
      crashSpec(fleet, strategy, options.version, name),
      held?.proxy.path ?? fleet.haproxy.socket,
    );
    const handle = await options.client.workflow.start<typeof rolloutWorkflow>('rolloutWorkflow', {
      // Groups from two servers out at once, instead of ten, so a small fleet moves as groups.
      args: strategy === 'rolling-groups' ? [spec, { bulkFrom: 2 }] : [spec],
      taskQueue: options.taskQueue,
      workflowId: `rollout/${name}/${Date.now()}`,
    });
    // Kill the worker the moment a server (after the first) shows the step: mid-rollout, mid-step. A step that is
    // one Runtime API command is caught with its command held back, its activity in flight.
    const holding = held;
    const killedAt = holding
      ? await holding.proxy.hold(holding.command, 1_500).then(() => holding.server)
      : await killMoment(strategy, step, fleet, () => handle.query(statusQuery).catch(() => undefined));
    const killed = `${worker.child.pid}@${hostname()}`;
    const killedAtMs = Date.now();
    await worker.crash();
    worker = await startWorkerProcess(env);
    const result = await handle.result();
    const landing = killLanded((await handle.fetchHistory()).events ?? [], {
      killedAt: killedAtMs,
      killed,
      work: stepWork(strategy, step),
    });
    await delay(300);
    const stats = await load.stop();
    const rolledOut = spec.version;
    const end = expectedEnd(strategy, options.version);
    const starts = (await countStarts(fleet.dir)).filter((s) => s.version === rolledOut);
    const commands = await upgradeCommands(fleet.dir);
    const versions = Object.values(await hostVersions(fleet.dir));
    return {
      strategy,
      step,
      killedAt,
      landed: landing.landed,
      landing: landing.evidence,
      phase: result.phase,
      expectedPhase: end.phase,
      sent: stats.sent,
      failedRequests: stats.failed,
      duplicateUpgrades: starts.length - new Set(starts.map((s) => s.name)).size,
      repeatedCommands: commands.length - new Set(commands.map((c) => `${c.name} ${c.version}`)).size,
      allOnNewVersion: versions.every((v) => v === end.version),
      durationS: Math.round((Date.now() - started) / 100) / 10,
    };
  } finally {
    await load.stop().catch(() => undefined);
    await worker.stop();
    await held?.proxy.close();
  }
}

/**
 * The Runtime API command that is the whole of a step, for the steps that are one: a server after the first taken
 * out of rotation (for groups, the second group, in the hand-over from the first), the canary's weights, the old
 * set drained by blue/green's switch.
 */
function heldCommand(
  strategy: CrashStrategy,
  step: CrashStep,
): { command: RegExp; server: string } | undefined {
  if (step === 'detach') {
    const server = strategy === 'rolling-groups' ? 'web-3' : 'web-2';
    return { command: new RegExp(`set server web/${server} state drain`), server };
  }
  if (step === 'set-weight') return { command: /set server web\/\S+ weight/, server: 'web-1' };
  if (step === 'switch') return { command: /set server web\/web-1 state drain/, server: 'web-1' };
  return undefined;
}

/** The spec with its HAProxy reached through `socket`. */
function throughSocket(spec: RolloutSpec, socket: string): RolloutSpec {
  if (spec.target.kind !== 'fleet') return spec;
  const { haproxy } = spec.target.loadBalancer;
  return { ...spec, target: { ...spec.target, loadBalancer: { haproxy: { ...haproxy, socket } } } };
}
