import { Client, Connection } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import { NativeConnection } from '@temporalio/worker';
import { defaultPayloadConverter } from '@temporalio/common';
import type { SimulatedStep, StepTimes } from '../activities/fakes/simulated-fleet';
import type { HistoryEvent, Timestamp } from '../client/history';
import { localActivityMarker, toMs } from '../client/history';
import { SimulatedFleets } from '../activities/fakes/simulated-fleet';
import type { TemporalDevServer } from '../infra/temporal-server';
import type { RolloutSpec, RolloutSpecInput } from '../spec';
import { parseRolloutSpec } from '../spec';
import type { BatonWorkerOptions } from '../worker/create-worker';
import { createBatonWorker } from '../worker/create-worker';
import { benchNamespace, startBenchScratch } from './scratch';

/** A Temporal dev server, a client and one worker whose activities act on simulated fleets. */
export interface SimulatedBench {
  readonly client: Client;
  readonly fleets: SimulatedFleets;
  readonly taskQueue: string;
  readonly namespace: string;
  readonly temporal: TemporalDevServer;
  readonly worker: Worker;
  close(): Promise<void>;
}

export async function startSimulatedBench(
  name: string,
  times: StepTimes,
  tuning: BatonTuning = {},
): Promise<SimulatedBench> {
  const scratch = await startBenchScratch(name);
  try {
    const { temporal } = scratch;
    const namespace = benchNamespace;
    const connection = await Connection.connect({ address: temporal.address });
    const nativeConnection = await NativeConnection.connect({ address: temporal.address });
    const fleets = new SimulatedFleets(times);
    const taskQueue = `bench-${name}`;
    const worker = await createBatonWorker({
      connection: nativeConnection,
      namespace,
      taskQueue,
      deps: fleets.deps(),
      tuning,
    });
    const running = worker.run();
    return {
      client: new Client({ connection, namespace }),
      fleets,
      taskQueue,
      namespace,
      temporal,
      worker,
      close: async () => {
        worker.shutdown();
        await running;
        await connection.close();
        await nativeConnection.close();
        await scratch.close();
      },
    };
  } catch (error) {
    // A connection or the worker failed to start: the server, and the folder, must not outlive the bench.
    await scratch.close();
    throw error;
  }
}

type BatonTuning = NonNullable<BatonWorkerOptions['tuning']>;

/** A rolling rollout spec for a simulated backend of `servers` servers, v1 → v2. */
export function simulatedSpec(
  fleets: SimulatedFleets,
  backend: string,
  servers: number,
  overrides: Partial<RolloutSpecInput> = {},
): RolloutSpec {
  return parseRolloutSpec({
    target: {
      kind: 'fleet',
      name: backend,
      loadBalancer: { haproxy: { socket: '/simulated/admin.sock', backend } },
      servers: fleets.add(backend, servers, 'v1'),
      upgrade: { argv: ['simulate-upgrade', '{address}', '{version}'], timeout: '1m' },
    },
    version: 'v2',
    strategy: { type: 'rolling', batchSize: '10%' },
    drain: { timeout: '1m', pollInterval: '10ms' },
    verify: { http: { passes: 1, interval: '10ms', timeout: '1m' } },
    ...overrides,
  });
}

const stepOfActivity: Record<string, SimulatedStep> = {
  detachServer: 'detach',
  drainServer: 'drain',
  upgradeServer: 'upgrade',
  verifyServer: 'verify',
  attachServer: 'attach',
  detachServers: 'detach',
  drainServers: 'drain',
  upgradeServers: 'upgrade',
  verifyServers: 'verify',
  attachServers: 'attach',
};

/**
 * The engine's overhead on each step of a rollout's history: the time from the step before it (the same
 * server's, or group's, previous step; for a detach, the last step that finished before it was scheduled, which
 * is what let it start) to its completion, less the work the simulated fleet recorded for it (for a group, its
 * slowest server's). That is Temporal's round trips (workflow task, dispatch, completion) and Baton's own code.
 *
 * A group's detach and attach run as local activities, recorded as markers when their workflow task completes:
 * that moment counts as their completion (later than the command's own end, so the overhead is not understated).
 * Markers carry no input: an attach is the group verified last, a detach the group whose drain comes next; a
 * handover is both, its detach timed from its attach's completion, so it counts as a step with no overhead.
 */
export function stepOverheadsMs(events: readonly HistoryEvent[], fleets: SimulatedFleets): number[] {
  const scheduled = new Map<string, { step: SimulatedStep; servers: string[]; at: number }>();
  const lastDone = new Map<string, number>();
  let lastCompletion = toMs(events[0]?.eventTime as Timestamp);
  const overheads: number[] = [];
  const drainGroups = events.flatMap((event) => {
    const attributes = event.activityTaskScheduledEventAttributes;
    const input = attributes?.input?.payloads?.[0];
    return attributes?.activityType?.name === 'drainServers' && input
      ? [serverKeys(defaultPayloadConverter.fromPayload(input))]
      : [];
  });
  let detaches = 0;
  let lastVerified: string[] = [];
  const complete = (step: SimulatedStep, servers: string[], from: number, at: number) => {
    const work = Math.max(0, ...servers.map((key) => fleets.work.get(`${key}/${step}`) ?? 0));
    overheads.push(at - from - work);
    for (const key of servers) lastDone.set(key, at);
    lastCompletion = at;
  };
  for (const event of events) {
    const at = toMs(event.eventTime as Timestamp);
    const local = localActivityMarker(event)?.activity_type;
    if (local === 'attachServers' || local === 'handOverServers') {
      complete('attach', lastVerified, Math.max(...lastVerified.map((key) => lastDone.get(key) ?? at)), at);
    }
    if (local === 'detachServers' || local === 'handOverServers') {
      const servers = drainGroups[detaches++] ?? [];
      // A handover's detach waits for its attach: the attach's completion (the same moment) is what let it go.
      complete('detach', servers, lastCompletion, at);
    }
    if (local !== undefined) continue;
    const attributes = event.activityTaskScheduledEventAttributes;
    if (attributes) {
      const step = stepOfActivity[attributes.activityType?.name ?? ''];
      const input = attributes.input?.payloads?.[0];
      if (step && input) {
        const servers = serverKeys(defaultPayloadConverter.fromPayload(input));
        // A detach starts a server: what it waited for is the last step done anywhere before it.
        if (step === 'detach') for (const key of servers) lastDone.set(key, lastCompletion);
        scheduled.set(String(event.eventId), { step, servers, at });
      }
    }
    const completed = event.activityTaskCompletedEventAttributes;
    if (completed) {
      lastCompletion = at;
      const step = scheduled.get(String(completed.scheduledEventId));
      if (!step) continue;
      if (step.step === 'verify') lastVerified = step.servers;
      complete(
        step.step,
        step.servers,
        Math.max(...step.servers.map((key) => lastDone.get(key) ?? step.at)),
        at,
      );
    }
  }
  return overheads;
}

type ServerInput = string | { name: string; address: string };

/** "backend/server" of each server a step activity's input names (one server, or a group). */
function serverKeys(input: unknown): string[] {
  const value = input as {
    loadBalancer?: { backend: string };
    server?: ServerInput;
    servers?: ServerInput[];
  };
  const servers = value.servers ?? (value.server !== undefined ? [value.server] : []);
  return servers.map((server) => {
    if (typeof server === 'string') return `${value.loadBalancer?.backend ?? ''}/${server}`;
    // Simulated addresses are <server>.<backend>:8080.
    const host = server.address.split(':')[0] ?? '';
    return `${host.slice(server.name.length + 1)}/${server.name}`;
  });
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** The middle value; with an even count, the mean of the two middle ones. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

/** The most resident memory the process reached while `work` ran, sampled every 250 ms. */
export async function peakRssMb<T>(work: () => Promise<T>): Promise<{ result: T; peakMb: number }> {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 250);
  try {
    const result = await work();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { result, peakMb: Math.round(peak / 1024 / 1024) };
  } finally {
    clearInterval(timer);
  }
}

export const round = (n: number, digits = 2): number => Number(n.toFixed(digits));
