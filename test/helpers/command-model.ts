import type { Client } from '@temporalio/client';
import fc from 'fast-check';
import type { SimulatedFleets } from '../../activities/fakes/simulated-fleet';
import { simulatedSpec } from '../../bench/simulated';
import type { RolloutSpec, RolloutSpecInput } from '../../spec';
import { fetchRolloutEvents, rolloutHistory } from '../../client/history';
import { commandRollout, RolloutCommandRejectedError } from '../../client/rollouts';
import type { rolloutWorkflow } from '../../workflows';
import type { RolloutRun } from '../../workflows/continuation';
import type { RolloutStatus } from '../../workflows/messages';
import { statusQuery } from '../../workflows/messages';

/**
 * The operator commands' rules, checked against real rollouts on a real Temporal server with simulated fleets:
 * generated sequences of commands sent at random moments (the last milliseconds before success, across
 * continue-as-new, during rollbacks, at gates, after the end), each answer checked against what then happened.
 */

export type Verb = 'pause' | 'resume' | 'promote' | 'promote --full' | 'abort';

export interface Command {
  readonly verb: Verb;
  /** When it is sent, in ms after the rollout started. */
  readonly atMs: number;
}

/** The rollouts the commands are sent to: their shapes put gates, runs and ends at different moments. */
export type Shape = 'rolling' | 'rolling-gate' | 'rolling-runs' | 'canary-gate';

export interface Sequence {
  readonly shape: Shape;
  readonly commands: readonly Command[];
}

/** How long each shape runs without commands, roughly: commands land before, around and after the end. */
const spanMs: Record<Shape, number> = {
  rolling: 500,
  'rolling-gate': 500,
  'rolling-runs': 2_000,
  'canary-gate': 500,
};

export const sequenceArbitrary: fc.Arbitrary<Sequence> = fc
  .constantFrom<Shape>('rolling', 'rolling-gate', 'rolling-runs', 'canary-gate')
  .chain((shape) =>
    fc.record({
      shape: fc.constant(shape),
      commands: fc.array(
        fc.record({
          verb: fc.constantFrom<Verb>('pause', 'resume', 'promote', 'promote --full', 'abort'),
          atMs: fc.integer({ min: 0, max: Math.round(spanMs[shape] * 1.3) }),
        }),
        { minLength: 1, maxLength: 6 },
      ),
    }),
  )
  .map((sequence) => ({ ...sequence, commands: [...sequence.commands].sort((a, b) => a.atMs - b.atMs) }));

const servers: Record<Shape, number> = {
  rolling: 6,
  'rolling-gate': 6,
  'rolling-runs': 24,
  'canary-gate': 3,
};

function specOf(shape: Shape): Partial<RolloutSpecInput> {
  switch (shape) {
    case 'rolling':
      return { strategy: { type: 'rolling', batchSize: 2 } };
    case 'rolling-gate':
      return {
        strategy: {
          type: 'rolling',
          batchSize: 2,
          pauses: [{ after: 1, timeout: '400ms', onTimeout: 'promote' }],
        },
      };
    case 'rolling-runs':
      return { strategy: { type: 'rolling', batchSize: 1 } };
    case 'canary-gate':
      return { strategy: { type: 'canary', steps: [{ setWeight: 34 }, { pause: {} }, { setWeight: 67 }] } };
  }
}

/** Engine settings: a small history per run makes a rollout of 24 servers continue as new every few servers. */
const runOf = (shape: Shape): RolloutRun => (shape === 'rolling-runs' ? { maxEventsPerRun: 250 } : {});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
const pendingServers = (status: RolloutStatus) =>
  new Set(status.servers.filter((s) => s.step === 'pending').map((s) => s.name));

/** Where a sequence's rollout runs: its spec, and how its servers ended. */
export interface ModelTarget {
  readonly spec: RolloutSpec;
  servers(): Promise<Array<{ name: string; version: string; upgrades: number; serving: boolean }>>;
  stop(): Promise<void>;
}

export interface ModelWorld {
  readonly client: Client;
  readonly taskQueue: string;
  /** A fresh fleet, named `name`, for one sequence. */
  target(name: string, servers: number, spec: Partial<RolloutSpecInput>): Promise<ModelTarget>;
  /** How much slower than the simulated fleets its rollouts are: command times stretch by as much. */
  readonly pace?: number;
  /** The shapes it runs (a real fleet leaves out the one of 24 servers). */
  readonly shapes?: readonly Shape[];
}

/** Fleets whose steps take fixed, known times: fast enough for thousands of sequences. */
export function simulatedWorld(client: Client, fleets: SimulatedFleets, taskQueue: string): ModelWorld {
  return {
    client,
    taskQueue,
    target: (name, servers, spec) =>
      Promise.resolve({
        spec: simulatedSpec(fleets, name, servers, spec),
        servers: () => Promise.resolve(fleets.servers(name)),
        stop: () => Promise.resolve(),
      }),
  };
}

let rollouts = 0;

/**
 * Runs one sequence against a fresh rollout and returns every rule it saw broken (none when the commands kept
 * their word). The driver finishes a rollout the commands left paused or at a gate, as an operator would.
 */
export async function checkSequence(world: ModelWorld, sequence: Sequence): Promise<string[]> {
  const violations: string[] = [];
  const broke = (rule: string) => violations.push(`${sequence.shape}: ${rule}`);
  const backend = `model-${process.pid}-${++rollouts}`;
  const target = await world.target(backend, servers[sequence.shape], specOf(sequence.shape));
  try {
    return await checkOn(world, target, backend, sequence, violations, broke);
  } finally {
    await target.stop();
  }
}

const endedPhases: readonly string[] = ['succeeded', 'rolled-back', 'failed'];

/**
 * Why a refusal was wrong, or undefined when the rollout's state, as the model knows it and as the status showed
 * it just before and just after the command, gives the reason the refusal names. A refusal is more than any
 * reason: a Baton that refused every pause would otherwise pass.
 */
export function unjustifiedRefusal(refusal: {
  verb: Verb;
  message: string;
  /** The model's last accepted command was a pause that nothing has ended since. */
  held: boolean;
  /** An abort was accepted. */
  aborted: boolean;
  /** A promote was accepted earlier in the sequence. */
  promoted: boolean;
  ended: boolean;
  before: RolloutStatus | undefined;
  after: RolloutStatus | undefined;
}): string | undefined {
  const { verb, message, held, aborted, promoted, ended, before, after } = refusal;
  const phases = [before?.phase, after?.phase];
  const atGate = [before, after].some((s) => s?.waiting?.for === 'promote');
  const rules: Array<[RegExp, boolean]> = [
    [/the rollout has already \S+/, ended],
    [/the rollout is rolling back/, aborted || phases.includes('rolling-back') || ended],
    [/the rollout is already aborting/, aborted],
    [/the rollout is already paused/, verb === 'pause' && held],
    [/the rollout is not paused/, verb === 'resume' && !held],
    [/waits at .* for promote, not resume/, verb === 'resume' && !held && atGate],
    [/already promoted past/, verb.startsWith('promote') && promoted],
    [
      /nothing to promote/,
      verb.startsWith('promote') && !held && [before, after].some((s) => s?.waiting?.for !== 'promote'),
    ],
  ];
  const rule = rules.find(([reason]) => reason.test(message));
  if (!rule) return `refused for a reason the model does not know: ${message}`;
  if (!rule[1])
    return `refused as "${message.replace(/^.*refused: /, '')}", which the rollout's state does not bear out (paused by the model: ${held}, aborted: ${aborted}, before: ${before?.phase ?? '?'}/${before?.waiting?.for ?? '-'}, after: ${after?.phase ?? '?'}/${after?.waiting?.for ?? '-'})`;
  return undefined;
}

async function checkOn(
  world: ModelWorld,
  target: ModelTarget,
  backend: string,
  sequence: Sequence,
  violations: string[],
  broke: (rule: string) => void,
): Promise<string[]> {
  const { spec } = target;
  const handle = await world.client.workflow.start<typeof rolloutWorkflow>('rolloutWorkflow', {
    args: [spec, runOf(sequence.shape)],
    taskQueue: world.taskQueue,
    workflowId: `rollout/${backend}`,
  });
  const startedAt = Date.now();
  let finished = false;
  const result = handle.result().finally(() => (finished = true));
  result.catch(() => undefined);

  const accepted: Array<{ verb: Verb; by: string }> = [];
  /** Set while the last accepted command was a pause: the servers that were pending then must stay pending. */
  let held: { pending: Set<string>; by: string } | undefined;
  let aborted = false;

  const send = async (verb: Verb, by: string): Promise<void> => {
    if (held && !finished) {
      const now = await handle.query(statusQuery);
      const started = [...held.pending].filter((name) => !pendingServers(now).has(name));
      if (started.length > 0) broke(`paused by ${held.by}, yet ${started.join(', ')} started`);
      if (now.phase === 'succeeded') broke(`paused by ${held.by}, yet the rollout succeeded`);
      else if (now.phase !== 'paused' || now.waiting?.for !== 'resume')
        broke(
          `paused by ${held.by}, yet the rollout shows ${now.phase}, waiting for ${now.waiting?.for ?? 'nothing'}`,
        );
    }
    const endedBefore = finished;
    const before = finished ? undefined : await handle.query(statusQuery).catch(() => undefined);
    try {
      // Through the client library, as `baton` sends it.
      const status = await commandRollout(
        world.client,
        backend,
        verb === 'promote --full' ? 'promote' : verb,
        {
          by,
          reason: `${verb} from the model`,
          ...(verb === 'promote --full' ? { full: true } : {}),
        },
      );
      accepted.push({ verb, by });
      if (endedBefore) broke(`${verb} by ${by} was accepted after the rollout had ended`);
      if (verb === 'pause') {
        if (status.phase !== 'paused')
          broke(`pause by ${by} was accepted, yet the answer says ${status.phase}`);
        held = { pending: pendingServers(status), by };
      } else if (verb === 'abort') {
        aborted = true;
        held = undefined;
      } else if (status.phase !== 'paused' || status.waiting?.for === 'promote') held = undefined;
    } catch (error) {
      const refused = error instanceof RolloutCommandRejectedError && /refused: \S/.test(error.message);
      if (!refused) broke(`${verb} by ${by} failed without a reason: ${String(error)}`);
      else {
        const after = await handle.query(statusQuery).catch(() => undefined);
        const problem = unjustifiedRefusal({
          verb,
          message: error.message,
          held: held !== undefined,
          aborted,
          promoted: accepted.some((c) => c.verb.startsWith('promote')),
          ended: finished || (after !== undefined && endedPhases.includes(after.phase)),
          before,
          after,
        });
        if (problem) broke(`${verb} by ${by}: ${problem}`);
      }
    }
  };

  for (const [index, command] of sequence.commands.entries()) {
    await sleep(startedAt + command.atMs * (world.pace ?? 1) - Date.now());
    await send(command.verb, `operator-${index}`);
  }

  // A held rollout stays held: nothing starts while no one resumes it.
  if (held && !finished) {
    await sleep(300);
    const now = await handle.query(statusQuery);
    if (now.phase !== 'paused') broke(`paused by ${held.by}, it went on to ${now.phase} by itself`);
  }
  for (let turns = 0; !finished; turns++) {
    if (turns > 600) {
      broke('the rollout never ended');
      await handle.terminate('the command model gave up on it');
      break;
    }
    const status = await handle.query(statusQuery).catch(() => undefined);
    if (status?.phase === 'paused')
      await send(status.waiting?.for === 'promote' ? 'promote' : 'resume', 'driver');
    await Promise.race([result, sleep(50)]);
  }

  const outcome = await result.catch((error: unknown) => ({ phase: 'failed', reason: String(error) }));
  if (!finished) return violations;
  if (aborted && outcome.phase !== 'rolled-back')
    broke(`an abort was accepted, yet the rollout ended ${outcome.phase}`);
  if (!aborted && outcome.phase !== 'succeeded')
    broke(`no abort was accepted, yet the rollout ended ${outcome.phase}: ${outcome.reason ?? ''}`);

  // Every command the rollout accepted, and only those, in its record, with who and why.
  const final = await handle.query(statusQuery);
  const recorded = final.commands.map((c) => `${c.command}${c.full ? ' --full' : ''} by ${c.by ?? '?'}`);
  const sent = accepted.map((c) => `${c.verb} by ${c.by}`);
  if (recorded.join(', ') !== sent.join(', '))
    broke(`the record shows [${recorded.join(', ')}], the accepted commands were [${sent.join(', ')}]`);
  if (final.commands.some((c) => c.reason === undefined && c.by !== 'progress deadline'))
    broke('a recorded command has no reason');

  // What `baton history` shows, from the events of every run: each accepted command once, with who and why.
  const events = await fetchRolloutEvents(world.client, handle.workflowId, handle.firstExecutionRunId);
  const shown = rolloutHistory(events)
    .filter((entry) => entry.kind === 'command' && entry.outcome === 'accepted')
    .map((entry) => entry.what);
  const expected = accepted.map((c) => `${c.verb} by ${c.by}: ${c.verb} from the model`);
  if (shown.join(', ') !== expected.join(', '))
    broke(`baton history shows [${shown.join(', ')}], the accepted commands were [${expected.join(', ')}]`);

  // No server upgraded twice: once to v2, and once back when rolled back.
  for (const server of await target.servers()) {
    const want = outcome.phase === 'succeeded' ? 'v2' : 'v1';
    if (server.version !== want || !server.serving)
      broke(
        `${server.name} ended on ${server.version}${server.serving ? '' : ', out of rotation'}, not ${want}`,
      );
    if (server.upgrades > (outcome.phase === 'succeeded' ? 1 : 2))
      broke(`${server.name} was upgraded ${server.upgrades} times`);
  }
  return violations;
}

/** Runs `count` generated sequences, `parallel` at a time; the figures a benchmark prints. */
export async function runCommandModel(
  world: ModelWorld,
  count: number,
  parallel: number,
  seed?: number,
): Promise<{ sequences: number; commands: number; byShape: Record<Shape, number>; violations: string[] }> {
  const shapes = world.shapes;
  const arbitrary = shapes ? sequenceArbitrary.filter((s) => shapes.includes(s.shape)) : sequenceArbitrary;
  const sequences = fc.sample(arbitrary, { numRuns: count, ...(seed !== undefined ? { seed } : {}) });
  const violations: string[] = [];
  const byShape: Record<Shape, number> = {
    rolling: 0,
    'rolling-gate': 0,
    'rolling-runs': 0,
    'canary-gate': 0,
  };
  for (const sequence of sequences) byShape[sequence.shape]++;
  for (let offset = 0; offset < sequences.length; offset += parallel) {
    const group = sequences.slice(offset, offset + parallel);
    const found = await Promise.all(group.map((sequence) => checkSequence(world, sequence)));
    found.forEach((broken, i) => {
      if (broken.length > 0) violations.push(`${JSON.stringify(group[i])}: ${broken.join('; ')}`);
    });
  }
  const commands = sequences.reduce((sum, sequence) => sum + sequence.commands.length, 0);
  return { sequences: sequences.length, commands, byShape, violations };
}
