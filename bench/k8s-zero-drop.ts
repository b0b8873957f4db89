import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { KubeConfig } from '@kubernetes/client-node';
import { realActivityDeps } from '../activities';
import { kubernetesClients } from '../activities/kubernetes/api';
import { startLocalCluster } from '../infra/kubernetes-cluster';
import type { DemoApp } from '../infra/kubernetes/demo-app-objects';
import { demoAppTarget, deployDemoApp } from '../infra/kubernetes/demo-app-objects';
import type { LoadStats } from '../infra/load';
import { startLoad } from '../infra/load';
import { parseRolloutSpec } from '../spec';
import { createBatonWorker } from '../worker/create-worker';
import type { rolloutWorkflow } from '../workflows';
import { nativeRollingUpdate } from './k8s-native';
import { benchNamespace, startBenchScratch } from './scratch';
import { printTable } from './table';
import { reportFigures } from './verdict';

const replicas = 6;
const ratePerSecond = 250;
/** Each side rolls to one version after another until at least this many requests were sent. */
const minimumRequests = 10_000;

/**
 * The demo app on a real node, 6 pods behind a Service, under the same load through its ClusterIP, rolled out
 * over and over until 10,000 requests were sent:
 *   baton: Baton's rolling rollout (each old pod leaves the Service before it is deleted);
 *   native: the Deployment's own rolling update, its image patched as `kubectl set image` does, no preStop hook.
 */
export async function runK8sZeroDrop(): Promise<void> {
  const scratch = await startBenchScratch('k8s-zero-drop');
  try {
    const cluster = await startLocalCluster({
      dir: join(scratch.dir, 'cluster'),
      name: 'bench-zero-drop',
      realNode: true,
    });
    try {
      const kc = new KubeConfig();
      kc.loadFromFile(cluster.kubeconfig);
      await compare(kc, scratch.temporal.address);
    } finally {
      await cluster.stop();
    }
  } finally {
    await scratch.close();
  }
}

async function compare(kc: KubeConfig, address: string): Promise<void> {
  const connection = await Connection.connect({ address });
  const nativeConnection = await NativeConnection.connect({ address });
  const taskQueue = 'bench-k8s-zero-drop';
  const worker = await createBatonWorker({
    connection: nativeConnection,
    namespace: benchNamespace,
    taskQueue,
    deps: { ...realActivityDeps(), kubernetes: () => kubernetesClients(kc) },
  });
  const workerRun = worker.run();
  const client = new Client({ connection, namespace: benchNamespace });
  try {
    const underLoad = async (app: DemoApp, rollTo: (version: string) => Promise<void>) => {
      const load = startLoad({ url: app.url, ratePerSecond });
      let rollouts = 0;
      const started = Date.now();
      while (load.stats().sent < minimumRequests) {
        await rollTo(`v${rollouts + 2}`);
        rollouts++;
      }
      const stats = await load.stop();
      return { ...stats, rollouts, rolloutS: (Date.now() - started) / 1000 };
    };

    const batonApp = await deployDemoApp(kc, { namespace: 'baton', replicas, version: 'v1' });
    process.stderr.write(`baton: ${replicas} pods, ${ratePerSecond} requests/s through ${batonApp.url}\n`);
    const baton = await underLoad(batonApp, async (version) => {
      const spec = parseRolloutSpec({
        target: demoAppTarget(batonApp, 'bench-k8s-zero-drop', { readyTimeout: '2m' }),
        version,
        strategy: { type: 'rolling' },
      });
      process.stderr.write(`baton: rolling to ${version}…\n`);
      const result = await client.workflow.execute<typeof rolloutWorkflow>('rolloutWorkflow', {
        args: [spec],
        taskQueue,
        workflowId: `rollout/${spec.target.name}/${version}`,
      });
      if (result.phase !== 'succeeded')
        throw new Error(`Baton's rollout to ${version} ended ${result.phase}`);
    });

    const nativeApp = await deployDemoApp(kc, { namespace: 'native', replicas, version: 'v1' });
    process.stderr.write(`native: ${replicas} pods, ${ratePerSecond} requests/s through ${nativeApp.url}\n`);
    const native = await underLoad(nativeApp, async (version) => {
      process.stderr.write(`native: image to ${version}…\n`);
      await nativeRollingUpdate(kc, nativeApp, version, replicas);
    });

    const kinds = (s: LoadStats) =>
      Object.entries(s.errors)
        .map(([k, n]) => `${k}: ${n}`)
        .join(', ') || '-';
    printTable(
      ['run', 'replicas', 'rollouts', 'rolloutS', 'sent', 'failed', 'failures'],
      [baton, native].map((run, i) => [
        i === 0 ? 'baton' : 'native',
        replicas,
        run.rollouts,
        run.rolloutS.toFixed(1),
        run.sent,
        run.failed,
        kinds(run),
      ]),
    );
    // Target: Baton fails none of at least 10,000 requests, and the native update fails some.
    reportFigures(
      {
        replicas,
        ratePerSecond,
        baton: { sent: baton.sent, failed: baton.failed, rollouts: baton.rollouts },
        native: { sent: native.sent, failed: native.failed, rollouts: native.rollouts },
      },
      baton.failed === 0 && baton.sent >= 10_000 && native.failed > 0,
    );
  } finally {
    worker.shutdown();
    await workerRun;
    await nativeConnection.close();
    await connection.close();
  }
}
