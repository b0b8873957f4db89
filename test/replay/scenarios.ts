import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { KubeConfig } from '@kubernetes/client-node';
import type { ActivityDeps } from '../../activities';
import { realActivityDeps } from '../../activities';
import { InMemoryFleet } from '../../activities/fakes/in-memory-fleet';
import { kubernetesClients } from '../../activities/kubernetes/api';
import type { LocalCluster } from '../../infra/kubernetes-cluster';
import { startLocalCluster } from '../../infra/kubernetes-cluster';
import { startLoad } from '../../infra/load';
import { demoAppTarget, deployDemoApp } from '../../infra/kubernetes/demo-app-objects';
import type { RolloutSpec, RolloutSpecInput } from '../../spec';
import { parseRolloutSpec } from '../../spec';
import type { rolloutWorkflow } from '../../workflows';
import type { RolloutRun } from '../../workflows/continuation';
import type { OperatorCommand, RolloutStatus } from '../../workflows/messages';
import { abortUpdate, pauseUpdate, promoteUpdate, resumeUpdate, statusQuery } from '../../workflows/messages';
import { exampleFiles, localExample, promoteUntilDone } from '../helpers/examples';
import { startTestFleet } from '../helpers/fleet';
import { seedApp, seededAppTarget, seededImage } from '../helpers/kubernetes';
import { inMemoryFleetSpec, serverNames } from '../helpers/specs';

/** Where a scenario's rollout runs while its history is recorded, and how it is steered to its end. */
export interface Recording {
  readonly spec: RolloutSpec;
  readonly deps: ActivityDeps;
  /** Drives the rollout to its end (promotes at its gates); by default, waits for its result. */
  readonly steer?: (handle: WorkflowHandle<typeof rolloutWorkflow>) => Promise<unknown>;
  tearDown(): Promise<void>;
}

/** The rollouts whose histories are saved for replay: one per path through each strategy, on each target. */
export interface ReplayScenario {
  readonly name: string;
  /** Sets up the fleet or cluster it rolls out (in memory, or real for strategies the fake can't run). */
  record(): Promise<Recording>;
  /** Engine settings: a small event limit makes a long rollout of a few dozen servers; its last run is saved. */
  readonly run?: RolloutRun;
}

function inMemory(
  name: string,
  fleet: () => InMemoryFleet,
  spec: RolloutSpec,
  run?: RolloutRun,
): ReplayScenario {
  return {
    name,
    ...(run ? { run } : {}),
    record: () => Promise.resolve({ spec, deps: fleet().deps(), tearDown: () => Promise.resolve() }),
  };
}

type Rollout = WorkflowHandle<typeof rolloutWorkflow>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until the rollout's status satisfies `ready` (or it ended). */
async function until(handle: Rollout, ready: (status: RolloutStatus) => boolean): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const status = await handle.query(statusQuery).catch(() => undefined);
    if (status && (ready(status) || ['succeeded', 'rolled-back', 'failed'].includes(status.phase))) return;
    await sleep(50);
  }
  throw new Error('the rollout never reached the moment a command was meant for');
}

const oneServerDone = (status: RolloutStatus) => status.servers.some((s) => s.step === 'done');
const operator: OperatorCommand = { by: 'replay', reason: 'recorded for replay' };

/** An operator pauses once a server is done, looks for a moment, then resumes. */
async function pauseThenResume(handle: Rollout): Promise<unknown> {
  await until(handle, oneServerDone);
  await handle.executeUpdate(pauseUpdate, { args: [operator] });
  await sleep(300);
  await handle.executeUpdate(resumeUpdate, { args: [{ by: 'replay' }] });
  return handle.result();
}

/** An operator aborts once a server is done. */
async function abortMidway(handle: Rollout): Promise<unknown> {
  await until(handle, oneServerDone);
  await handle.executeUpdate(abortUpdate, { args: [operator] });
  return handle.result();
}

function steered(
  name: string,
  fleet: () => InMemoryFleet,
  spec: RolloutSpec,
  steer: (handle: Rollout) => Promise<unknown>,
): ReplayScenario {
  return {
    name,
    record: () => Promise.resolve({ spec, deps: fleet().deps(), steer, tearDown: () => Promise.resolve() }),
  };
}

/** A rolling rollout that tells a real webhook receiver of each phase. */
function withWebhook(name: string): ReplayScenario {
  return {
    name,
    record: async () => {
      const server = createServer((request, response) => {
        request.resume();
        request.on('end', () => response.writeHead(204).end());
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as AddressInfo;
      const spec = inMemoryFleetSpec(
        2,
        { notify: { webhook: { url: `http://127.0.0.1:${port}/hook` } } },
        'replay-webhook',
      );
      return {
        spec,
        deps: new InMemoryFleet(serverNames(2), 'v1').deps(),
        tearDown: () => new Promise<void>((resolve) => server.close(() => resolve())),
      };
    },
  };
}

/** A fleet Baton provisions, on a real local fleet behind real HAProxy, rolled to a version that fails its checks. */
function fleetRollsBack(name: string, strategy: RolloutSpecInput['strategy']): ReplayScenario {
  return {
    name,
    record: async () => {
      const fleet = await startTestFleet({
        servers: 2,
        version: 'v1',
        defaults: { latencyMs: 5 },
        versions: { 'v2-broken': { healthStatus: 500 } },
      });
      const spec = parseRolloutSpec({
        ...fleet.spec({ version: 'v2-broken', strategy }),
        target: fleet.provisionedTarget(`replay-${name}`),
      });
      return { spec, deps: realActivityDeps(), tearDown: () => fleet.stop() };
    },
  };
}

/**
 * HAProxy reloaded mid-rollout on a real fleet: a canary in its analysis window (its weights put back by the hold
 * beside the wait, then the window judged again), and a blue/green rollout at its approval gate (its new servers
 * added again) and once more after the switch.
 */
function fleetReloaded(name: string, strategy: 'canary' | 'blue-green'): ReplayScenario {
  return {
    name,
    record: async () => {
      const fleet = await startTestFleet({ servers: 3, version: 'v1', defaults: { latencyMs: 5 } });
      const spec =
        strategy === 'canary'
          ? parseRolloutSpec(
              fleet.spec(
                {
                  version: 'v2',
                  strategy: {
                    type: 'canary',
                    steps: [{ setWeight: 10 }, { analysis: { window: '3s', minRequests: 1 } }],
                  },
                },
                `replay-${name}`,
              ),
            )
          : parseRolloutSpec({
              ...fleet.spec({
                version: 'v2',
                strategy: { type: 'blue-green', autoPromote: false, scaleDownDelay: '3s' },
              }),
              target: fleet.provisionedTarget(`replay-${name}`),
            });
      const steer = async (handle: Rollout) => {
        if (strategy === 'canary') {
          await until(handle, (status) => (status.canary?.weight ?? 0) > 0);
          await sleep(1_000);
          await fleet.haproxy.reload();
        } else {
          await until(handle, (status) => status.phase === 'paused');
          await fleet.haproxy.reload();
          await sleep(1_500);
          await handle.executeUpdate(promoteUpdate, { args: [operator] });
          await until(handle, (status) => status.servers.some((s) => s.step === 'retired'));
          await sleep(500);
          await fleet.haproxy.reload();
        }
        return handle.result();
      };
      const load = startLoad({ url: `${fleet.haproxy.frontendUrl}/`, ratePerSecond: 50 });
      const tearDown = async () => {
        await load.stop();
        await fleet.stop();
      };
      return { spec, deps: realActivityDeps(), steer, tearDown };
    },
  };
}

/**
 * An example of examples/ for a fleet Baton provisions (servers it creates and destroys), on a real local fleet
 * behind real HAProxy: the in-memory fleet can't create servers.
 */
function fleetExample(file: string): ReplayScenario {
  const name = file.replace(/\.yaml$/, '');
  return {
    name: `${name}-example`,
    record: async () => {
      const fleet = await startTestFleet({ servers: 2, version: 'v1', defaults: { latencyMs: 5 } });
      const spec = parseRolloutSpec(
        localExample(file, () => fleet.provisionedTarget(`replay-${name}`)),
        file,
      );
      return { spec, deps: realActivityDeps(), steer: promoteUntilDone, tearDown: () => fleet.stop() };
    },
  };
}

/** One local control plane for every Kubernetes scenario of a refresh, each in its own namespace. */
let cluster: Promise<{ cluster: LocalCluster; kc: KubeConfig; dir: string }> | undefined;

async function sharedCluster(): Promise<{ cluster: LocalCluster; kc: KubeConfig }> {
  cluster ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'baton-replay-cluster-'));
    const started = await startLocalCluster({ dir, name: 'baton-replay' });
    const kc = new KubeConfig();
    kc.loadFromFile(started.kubeconfig);
    return { cluster: started, kc, dir };
  })();
  return cluster;
}

/** Stops the shared control plane, if a scenario started one. */
export async function stopSharedCluster(): Promise<void> {
  if (!cluster) return;
  const { cluster: started, dir } = await cluster;
  await started.stop();
  await rm(dir, { recursive: true, force: true });
  cluster = undefined;
}

/** A Kubernetes rollout on the real local control plane: `web` of 4 replicas on v1, rolled by `spec`. */
function asPodsCome(namespace: string): RolloutSpec {
  return parseRolloutSpec({
    target: { ...seededAppTarget(namespace), detachDelay: '0s' },
    version: 'v2',
    strategy: { type: 'rolling', maxSurge: '25%', maxUnavailable: 0 },
  });
}

function onKubernetes(
  name: string,
  spec: (namespace: string, brokenTag: string) => RolloutSpec,
): ReplayScenario {
  return {
    name,
    record: async () => {
      const { cluster: started, kc } = await sharedCluster();
      const namespace = `replay-${name}`.slice(0, 63);
      await seedApp(kc, namespace, { replicas: 4, image: seededImage });
      return {
        spec: spec(namespace, started.pods.brokenTag),
        deps: { ...realActivityDeps(), kubernetes: () => kubernetesClients(kc) },
        steer: promoteUntilDone,
        tearDown: () => Promise.resolve(),
      };
    },
  };
}

/**
 * The demo app on a real node, rolled with verify.http: each new pod is asked its version at its own address, which
 * kwok's pods have none of.
 */
function onRealNode(name: string): ReplayScenario {
  return {
    name,
    record: async () => {
      const dir = await mkdtemp(join(tmpdir(), 'baton-replay-real-node-'));
      const started = await startLocalCluster({ dir, name: 'baton-replay-real', realNode: true });
      const kc = new KubeConfig();
      kc.loadFromFile(started.kubeconfig);
      const app = await deployDemoApp(kc, { namespace: 'replay-verify', replicas: 2, version: 'v1' });
      return {
        spec: parseRolloutSpec({
          target: demoAppTarget(app, 'replay-verify-pods'),
          version: 'v2',
          strategy: { type: 'rolling' },
          verify: {
            http: { versionFrom: { json: 'version' }, passes: 2, interval: '200ms', timeout: '10s' },
          },
        }),
        deps: { ...realActivityDeps(), kubernetes: () => kubernetesClients(kc) },
        tearDown: async () => {
          await started.stop();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

/** Each Kubernetes example as written (waits shortened), native mode included. */
function kubernetesExample(file: string): ReplayScenario {
  return onKubernetes(`${file.replace(/\.yaml$/, '')}-example`, (namespace) =>
    parseRolloutSpec(
      localExample(file, (written) => ({
        ...seededAppTarget(namespace),
        ...(written.kind === 'kubernetes' && written.mode ? { mode: written.mode } : {}),
      })),
      file,
    ),
  );
}

/** 30 servers in groups of 10, web-14 failing within the budget: each verified group hands over to the next. */
function bulkHandover(name: string, target: string): ReplayScenario {
  return inMemory(
    name,
    () => new InMemoryFleet(serverNames(30), 'v1', { failingUpgrades: { 'web-14': 'v2' } }),
    inMemoryFleetSpec(
      30,
      { strategy: { type: 'rolling', batchSize: 10 }, failureBudget: { maxFailPercent: 10 } },
      target,
    ),
  );
}

export const replayScenarios: readonly ReplayScenario[] = [
  inMemory(
    'rolling-succeeds',
    () => new InMemoryFleet(serverNames(5), 'v1', { inFlightOnDetach: 2 }),
    inMemoryFleetSpec(5, {}, 'replay-ok'),
  ),
  inMemory(
    'rolling-rolls-back',
    () => new InMemoryFleet(serverNames(4), 'v1', { brokenVersions: ['v2'] }),
    inMemoryFleetSpec(4, {}, 'replay-back'),
  ),
  inMemory(
    'rolling-within-budget',
    () => new InMemoryFleet(serverNames(5), 'v1', { failingUpgrades: { 'web-2': 'v2' } }),
    inMemoryFleetSpec(5, { failureBudget: { maxFailPercent: 20 } }, 'replay-budget'),
  ),
  inMemory(
    'recreate-succeeds',
    () => new InMemoryFleet(serverNames(3), 'v1'),
    inMemoryFleetSpec(3, { strategy: { type: 'recreate' } }, 'replay-recreate'),
  ),
  inMemory(
    'canary-succeeds',
    () => new InMemoryFleet(serverNames(5), 'v1'),
    inMemoryFleetSpec(
      5,
      {
        strategy: {
          type: 'canary',
          steps: [{ setWeight: 20 }, { analysis: { window: '200ms' } }, { setWeight: 60 }],
          batchSize: 2,
        },
      },
      'replay-canary',
    ),
  ),
  inMemory(
    'canary-rolls-back',
    () => new InMemoryFleet(serverNames(5), 'v1', { errorRates: { v2: 0.5 } }),
    inMemoryFleetSpec(
      5,
      { strategy: { type: 'canary', steps: [{ setWeight: 40 }, { analysis: { window: '200ms' } }] } },
      'replay-canary-back',
    ),
  ),
  inMemory(
    'rolling-continued-run',
    () => new InMemoryFleet(serverNames(30), 'v1'),
    inMemoryFleetSpec(30, { strategy: { type: 'rolling', batchSize: 4 } }, 'replay-long'),
    { maxEventsPerRun: 300 },
  ),
  inMemory(
    'rolling-rollback-continued-run',
    () => new InMemoryFleet(serverNames(40), 'v1', { failingUpgrades: { 'web-33': 'v2' } }),
    inMemoryFleetSpec(40, { strategy: { type: 'rolling', batchSize: 4 } }, 'replay-long-back'),
    { maxEventsPerRun: 300 },
  ),
  inMemory(
    'rolling-bulk-one-fails',
    () => new InMemoryFleet(serverNames(20), 'v1', { failingUpgrades: { 'web-4': 'v2' } }),
    inMemoryFleetSpec(
      20,
      { strategy: { type: 'rolling', batchSize: 10 }, failureBudget: { maxFailPercent: 10 } },
      'replay-bulk',
    ),
  ),
  // A verified group's attach and the next group's detach are one command.
  bulkHandover('rolling-bulk-handover', 'replay-bulk-handover'),
  // The same, recorded once patches were decided in the first workflow task (workflows/patches.ts).
  bulkHandover('rolling-bulk-patches-at-start', 'replay-bulk-patches-at-start'),
  inMemory(
    'rolling-bulk-handover-fails',
    () => new InMemoryFleet(serverNames(20), 'v1', { failFirstDetach: ['web-15'] }),
    inMemoryFleetSpec(20, { strategy: { type: 'rolling', batchSize: 10 } }, 'replay-bulk-handover-fails'),
  ),
  steered(
    'rolling-paused-resumed',
    () => new InMemoryFleet(serverNames(4), 'v1', { upgradeMs: 100 }),
    inMemoryFleetSpec(4, {}, 'replay-paused'),
    pauseThenResume,
  ),
  steered(
    'rolling-aborted',
    () => new InMemoryFleet(serverNames(4), 'v1', { upgradeMs: 100 }),
    inMemoryFleetSpec(4, {}, 'replay-aborted'),
    abortMidway,
  ),
  steered(
    'canary-aborted-at-gate',
    () => new InMemoryFleet(serverNames(4), 'v1'),
    inMemoryFleetSpec(
      4,
      { strategy: { type: 'canary', steps: [{ setWeight: 25 }, { pause: {} }] } },
      'replay-canary-gate',
    ),
    async (handle) => {
      await until(handle, (status) => status.waiting?.for === 'promote');
      await handle.executeUpdate(abortUpdate, { args: [operator] });
      return handle.result();
    },
  ),
  // The abort cancels the drain in flight, and the rollback begins at once.
  steered(
    'rolling-abort-cuts-drain-short',
    () => new InMemoryFleet(serverNames(3), 'v1', { inFlightOnDetach: 1_000_000 }),
    inMemoryFleetSpec(3, { drain: { timeout: '1h', onTimeout: 'wait' } }, 'replay-abort-drain'),
    async (handle) => {
      await until(handle, (status) => status.servers.some((s) => s.step === 'drain'));
      await handle.executeUpdate(abortUpdate, { args: [operator] });
      return handle.result();
    },
  ),
  inMemory(
    'rolling-gate-timeout',
    () => new InMemoryFleet(serverNames(3), 'v1'),
    inMemoryFleetSpec(
      3,
      { strategy: { type: 'rolling', pauses: [{ after: 1, timeout: '300ms', onTimeout: 'abort' }] } },
      'replay-gate-timeout',
    ),
  ),
  steered(
    'rolling-paused-at-gate-timeout',
    () => new InMemoryFleet(serverNames(3), 'v1'),
    inMemoryFleetSpec(
      3,
      { strategy: { type: 'rolling', pauses: [{ after: 1, timeout: '500ms', onTimeout: 'promote' }] } },
      'replay-pause-at-gate',
    ),
    async (handle) => {
      await until(handle, (status) => status.waiting?.for === 'promote');
      await handle.executeUpdate(pauseUpdate, { args: [operator] });
      // The gate times out while the pause holds; the rollout moves on only once resumed.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      await handle.executeUpdate(resumeUpdate, { args: [operator] });
      return handle.result();
    },
  ),
  inMemory(
    'rolling-progress-deadline',
    () => new InMemoryFleet(serverNames(3), 'v1', { upgradeMs: 1_500 }),
    inMemoryFleetSpec(3, { progressDeadline: { timeout: '500ms', action: 'abort' } }, 'replay-deadline'),
  ),
  withWebhook('rolling-webhook'),
  inMemory(
    'recreate-rolls-back',
    () => new InMemoryFleet(serverNames(3), 'v1', { brokenVersions: ['v2'] }),
    inMemoryFleetSpec(3, { strategy: { type: 'recreate' } }, 'replay-recreate-back'),
  ),
  fleetRollsBack('fleet-surge-rolls-back', { type: 'surge' }),
  fleetReloaded('fleet-canary-reloaded', 'canary'),
  fleetReloaded('fleet-blue-green-reloaded', 'blue-green'),
  fleetRollsBack('fleet-blue-green-rolls-back', { type: 'blue-green', autoPromote: true }),
  ...['fleet-surge.yaml', 'fleet-blue-green.yaml', 'fleet-rolling-replace.yaml'].map(fleetExample),
  ...exampleFiles('kubernetes').map(kubernetesExample),
  onKubernetes('kubernetes-rolling-rolls-back', (namespace, brokenTag) =>
    parseRolloutSpec({
      target: seededAppTarget(namespace),
      version: brokenTag,
      strategy: { type: 'rolling', maxSurge: '25%', maxUnavailable: '25%' },
    }),
  ),
  // Recorded before each retirement and the scale-up after it were one activity; kept to replay that path.
  onKubernetes('kubernetes-rolling-as-pods-come', asPodsCome),
  onKubernetes('kubernetes-rolling-fused-steps', asPodsCome),
  onRealNode('kubernetes-verify-pods'),
  onKubernetes('kubernetes-native-undone', (namespace, brokenTag) =>
    parseRolloutSpec({
      target: { ...seededAppTarget(namespace), mode: 'native', service: undefined },
      version: brokenTag,
      strategy: { type: 'rolling', maxSurge: '25%', maxUnavailable: '25%' },
    }),
  ),
  ...(['canary', 'surge', 'recreate'] as const).map((type) =>
    onKubernetes(`kubernetes-${type}-rolls-back`, (namespace, brokenTag) =>
      parseRolloutSpec({
        target: seededAppTarget(namespace),
        version: brokenTag,
        strategy: type === 'canary' ? { type, steps: [{ setWeight: 25 }, { setWeight: 50 }] } : { type },
      }),
    ),
  ),
  onKubernetes('kubernetes-blue-green-rolls-back', (namespace, brokenTag) =>
    parseRolloutSpec({
      target: seededAppTarget(namespace),
      version: brokenTag,
      strategy: { type: 'blue-green' },
    }),
  ),
];
