import { join } from 'node:path';
import type { WorkflowClient } from '@temporalio/client';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { KubeConfig } from '@kubernetes/client-node';
import { realActivityDeps } from '../activities';
import { kubernetesClients } from '../activities/kubernetes/api';
import { startLocalCluster } from '../infra/kubernetes-cluster';
import type { DemoApp, DemoNodes } from '../infra/kubernetes/demo-app-objects';
import { demoAppTarget, deployDemoApp } from '../infra/kubernetes/demo-app-objects';
import { parseRolloutSpec } from '../spec';
import { createBatonWorker } from '../worker/create-worker';
import type { rolloutWorkflow } from '../workflows';
import { nativeRollingUpdate } from './k8s-native';
import { benchNamespace, startBenchScratch } from './scratch';
import { median } from './simulated';
import { printTable } from './table';
import { reportFigures } from './verdict';

const rollingUpdate = { maxSurge: '25%', maxUnavailable: '0%' };
const taskQueue = 'bench-k8s-vs-native';

interface Side {
  readonly label: string;
  readonly seconds: number[];
}

/**
 * The same Deployment (maxSurge 25%, maxUnavailable 0) rolled natively, by its controller, and by Baton, whose
 * every step waits for the new pods to be available: 100 replicas on kwok's nodes, then 20 on the real node.
 * Runs alternate between the two, and each figure is the median of its runs.
 */
export async function runK8sVsNative(): Promise<void> {
  const scratch = await startBenchScratch('k8s-vs-native');
  const connection = await Connection.connect({ address: scratch.temporal.address });
  const client = new Client({ connection, namespace: benchNamespace }).workflow;
  try {
    const kwok = await onCluster(scratch.temporal.address, join(scratch.dir, 'kwok'), { nodes: 3 }, (kc) =>
      compare(client, kc, { nodes: 'kwok', replicas: 100, runs: 5, detachDelays: ['0s'] }),
    );
    const real = await onCluster(
      scratch.temporal.address,
      join(scratch.dir, 'real'),
      { realNode: true },
      (kc) => compare(client, kc, { nodes: 'real', replicas: 20, runs: 2, detachDelays: ['0s', '3s'] }),
    );
    const rows = [...kwok, ...real];
    printTable(
      ['nodes', 'replicas', 'run', 'medianS', 'runsS', 'ratio'],
      rows.map((row) => [row.nodes, row.replicas, row.label, row.medianS, row.runsS, row.ratio ?? '-']),
    );
    const [kwokNative, kwokBaton] = kwok;
    const realNative = real[0];
    const realBaton = (delay: string) => real.find((row) => row.label === `baton detachDelay ${delay}`);
    // Target: at most 1.10 of the native update's time at 100 replicas.
    reportFigures(
      {
        replicas: 100,
        nativeS: kwokNative?.medianS,
        batonS: kwokBaton?.medianS,
        ratio: kwokBaton?.ratio,
        real: {
          replicas: 20,
          nativeS: realNative?.medianS,
          batonS: realBaton('3s')?.medianS,
          ratio: realBaton('3s')?.ratio,
          batonWithoutDetachDelayS: realBaton('0s')?.medianS,
          ratioWithoutDetachDelay: realBaton('0s')?.ratio,
        },
      },
      (kwokBaton?.ratio ?? Infinity) <= 1.1,
    );
  } finally {
    await connection.close();
    await scratch.close();
  }
}

/** A cluster and a worker for it, for the time `work` takes. */
async function onCluster<T>(
  address: string,
  dir: string,
  options: { nodes?: number; realNode?: boolean },
  work: (kc: KubeConfig) => Promise<T>,
): Promise<T> {
  const cluster = await startLocalCluster({ dir, name: 'bench-vs-native', ...options });
  const nativeConnection = await NativeConnection.connect({ address });
  try {
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfig);
    const worker = await createBatonWorker({
      connection: nativeConnection,
      namespace: benchNamespace,
      taskQueue,
      deps: { ...realActivityDeps(), kubernetes: () => kubernetesClients(kc) },
    });
    const run = worker.run();
    try {
      return await work(kc);
    } finally {
      worker.shutdown();
      await run;
    }
  } finally {
    await nativeConnection.close();
    await cluster.stop();
  }
}

async function compare(
  client: WorkflowClient,
  kc: KubeConfig,
  options: { nodes: DemoNodes; replicas: number; runs: number; detachDelays: readonly string[] },
) {
  const deploy = (namespace: string) =>
    deployDemoApp(kc, {
      namespace,
      replicas: options.replicas,
      version: 'v1',
      nodes: options.nodes,
      rollingUpdate,
      timeoutMs: 300_000,
    });
  const nativeApp = await deploy('native');
  const batonApps = await Promise.all(options.detachDelays.map((_, i) => deploy(`baton-${i}`)));
  const sides: Side[] = [
    { label: 'native', seconds: [] },
    ...options.detachDelays.map((delay) => ({ label: `baton detachDelay ${delay}`, seconds: [] })),
  ];
  const timed = async (side: Side | undefined, work: () => Promise<void>) => {
    const started = performance.now();
    await work();
    side?.seconds.push((performance.now() - started) / 1000);
  };
  for (let run = 0; run < options.runs; run++) {
    const version = `v${run + 2}`;
    process.stderr.write(`${options.nodes}: ${options.replicas} replicas to ${version}…\n`);
    await timed(sides[0], () => nativeRollingUpdate(kc, nativeApp, version, options.replicas));
    for (const [i, delay] of options.detachDelays.entries()) {
      const app = batonApps[i];
      if (app) await timed(sides[i + 1], () => batonRollingUpdate(client, app, version, delay));
    }
  }
  const native = median(sides[0]?.seconds ?? []);
  return sides.map((side) => ({
    nodes: options.nodes,
    replicas: options.replicas,
    label: side.label,
    medianS: round(median(side.seconds)),
    runsS: side.seconds.map((s) => round(s)).join(' '),
    ratio: side.label === 'native' ? undefined : round(median(side.seconds) / native, 3),
  }));
}

async function batonRollingUpdate(
  client: WorkflowClient,
  app: DemoApp,
  version: string,
  detachDelay: string,
) {
  const spec = parseRolloutSpec({
    target: demoAppTarget(app, `vs-native-${app.namespace}`, { detachDelay, readyTimeout: '2m' }),
    version,
    strategy: { type: 'rolling', maxSurge: rollingUpdate.maxSurge, maxUnavailable: 0 },
  });
  const result = await client.execute<typeof rolloutWorkflow>('rolloutWorkflow', {
    args: [spec],
    taskQueue,
    workflowId: `rollout/${spec.target.name}/${version}`,
  });
  if (result.phase !== 'succeeded') throw new Error(`Baton's rollout to ${version} ended ${result.phase}`);
}

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;
