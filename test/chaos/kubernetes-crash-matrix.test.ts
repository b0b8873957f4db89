import { hostname } from 'node:os';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { KubeConfig } from '@kubernetes/client-node';
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import type { LocalCluster } from '../../infra/kubernetes-cluster';
import { delay } from '../../infra/processes';
import type { RolloutSpecInput } from '../../spec';
import { parseRolloutSpec } from '../../spec';
import type { rolloutWorkflow } from '../../workflows';
import type { RolloutStatus } from '../../workflows/messages';
import { statusQuery } from '../../workflows/messages';
import { seedApp, seededAppTarget, seededImage, startTestCluster } from '../helpers/kubernetes';
import { until } from '../helpers/rollout';
import type { TestTemporal } from '../helpers/temporal';
import { uniqueTaskQueue } from '../helpers/temporal';
import type { StepWork } from '../helpers/kill-landed';
import { killLanded } from '../helpers/kill-landed';
import { startWorkerProcess } from '../helpers/worker';

let cluster: LocalCluster;
let kc: KubeConfig;
let temporal: TestTemporal;
let stop: (() => Promise<void>) | undefined;
before(async () => {
  ({ cluster, kc, temporal, stop } = await startTestCluster('baton-k8s-crash'));
});
after(() => stop?.());

const replicas = 4;

interface KubernetesCrashCase {
  readonly name: string;
  readonly strategy: RolloutSpecInput['strategy'];
  /** The rollout goes to a version whose pods never become Ready, and is rolled back. */
  readonly rollsBack?: boolean;
  /** The moment the worker is killed, read from the rollout's status and, where it shows first, the cluster. */
  readonly killWhen: (status: RolloutStatus, namespace: string) => boolean | Promise<boolean>;
  /** The work of that moment the kill must cut off (see killLanded): the step's activities, or its wait. */
  readonly work: StepWork;
}

/** A step of the rolling loop: new pods asked for and awaited, old ones retired as they come. */
const rollingLoop = /^(scaleDeployment|waitForDeployment|retireThenGrow|waitForMoreThenRead|verifyPods)$/;
/** The way back: what runs read, the new version scaled away and the old one back up, its Service pointed back. */
const rollback =
  /^(readReplicas|scaleDeployment|waitForDeployment|retireThenGrow|waitForMoreThenRead|setServiceSelector|deleteDeployment)$/;

const nextHasPods = (status: RolloutStatus) =>
  (status.kubernetes?.deployments.find((d) => d.role === 'next')?.replicas ?? 0) >= 1;
const rollingBack = (status: RolloutStatus) => status.phase === 'rolling-back';
const stableRetiring = (status: RolloutStatus) => {
  const stable = status.kubernetes?.deployments.find((d) => d.role === 'stable')?.replicas ?? replicas;
  return stable > 0 && stable < replicas;
};
/** The Service selects only the new version's pods: blue/green's switch just happened. */
const switched = async (_: RolloutStatus, namespace: string) => {
  const core = kc.makeApiClient(CoreV1Api);
  const selector = (await core.readNamespacedService({ namespace, name: 'web' })).spec?.selector ?? {};
  const labelSelector = Object.entries(selector)
    .map(([key, value]) => `${key}=${value}`)
    .join(',');
  const pods = (await core.listNamespacedPod({ namespace, labelSelector })).items;
  return pods.length > 0 && pods.every((pod) => pod.spec?.containers[0]?.image === `${seededImage}:v2`);
};

/**
 * The worker killed with SIGKILL in a step of each strategy on Kubernetes, and once during each one's rollback: the
 * new version's pods asked for, the canary's share set, the blue/green set up and waiting to be switched to, and
 * the way back under way.
 */
const cases: readonly KubernetesCrashCase[] = [
  {
    name: 'rolling, new pods asked for',
    strategy: { type: 'rolling' },
    killWhen: nextHasPods,
    work: { activities: rollingLoop },
  },
  {
    name: 'rolling, old pods retiring',
    strategy: { type: 'rolling' },
    killWhen: stableRetiring,
    work: { activities: rollingLoop },
  },
  {
    name: 'canary, its share set',
    strategy: { type: 'canary', steps: [{ setWeight: 50 }, { pause: { duration: '2s' } }] },
    killWhen: (status) => (status.canary?.weight ?? 0) >= 50,
    // The share's pods coming up, or the pause after them.
    work: { activities: /^(scaleDeployment|waitForMoreThenRead|watchCanaryPods|verifyPods)$/, timer: true },
  },
  {
    name: 'canary, promoting everyone',
    strategy: { type: 'canary', steps: [{ setWeight: 50 }] },
    killWhen: (status) => (status.canary?.step ?? 0) > (status.canary?.steps ?? 1),
    work: { activities: rollingLoop },
  },
  {
    name: 'blue/green, the new set up and not yet switched to',
    strategy: { type: 'blue-green', scaleDownDelay: '2s' },
    killWhen: nextHasPods,
    work: { activities: /^(scaleDeployment|waitForMoreThenRead|verifyPods)$/ },
  },
  {
    name: 'blue/green, just switched',
    strategy: { type: 'blue-green', scaleDownDelay: '2s' },
    killWhen: switched,
    // The switch itself, or the scale-down delay after it.
    work: { activities: /^setServiceSelector$/, timer: true },
  },
  {
    name: 'rolling, rolling back',
    strategy: { type: 'rolling' },
    rollsBack: true,
    killWhen: rollingBack,
    work: { activities: rollback },
  },
  {
    name: 'canary, rolling back',
    strategy: { type: 'canary', steps: [{ setWeight: 50 }] },
    rollsBack: true,
    killWhen: rollingBack,
    work: { activities: rollback },
  },
  {
    name: 'blue/green, rolling back',
    strategy: { type: 'blue-green' },
    rollsBack: true,
    killWhen: rollingBack,
    work: { activities: rollback },
  },
];

/** The images of the pods not terminating, sorted. */
async function liveImages(namespace: string): Promise<string[]> {
  const pods = await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace });
  return pods.items
    .filter((pod) => !pod.metadata?.deletionTimestamp)
    .map((pod) => pod.spec?.containers[0]?.image ?? '')
    .sort();
}

describe('crash matrix on Kubernetes: the worker killed (SIGKILL) in a step of each strategy and of its rollback', () => {
  cases.forEach((crash, index) => {
    it(`${crash.name}: a new worker finishes it, one Deployment and one ReplicaSet per version`, async () => {
      const namespace = `crash-${index}`;
      await seedApp(kc, namespace, { replicas, image: seededImage });
      const version = crash.rollsBack ? cluster.pods.brokenTag : 'v2';
      const spec = parseRolloutSpec({
        target: seededAppTarget(namespace),
        version,
        strategy: crash.strategy,
      });
      const env = {
        TEMPORAL_ADDRESS: temporal.address,
        TEMPORAL_NAMESPACE: temporal.namespace,
        BATON_TASK_QUEUE: uniqueTaskQueue(`k8s-crash-${index}`),
        KUBECONFIG: cluster.kubeconfig,
      };
      let worker = await startWorkerProcess(env);
      try {
        const handle = await temporal.client.workflow.start<typeof rolloutWorkflow>('rolloutWorkflow', {
          args: [spec],
          taskQueue: env.BATON_TASK_QUEUE,
          workflowId: `rollout/${spec.target.name}/crash-${Date.now()}`,
        });
        await until(async () => {
          const status = await handle.query(statusQuery).catch(() => undefined);
          return status !== undefined && (await crash.killWhen(status, namespace));
        });
        const killed = `${worker.child.pid}@${hostname()}`;
        const killedAt = Date.now();
        await worker.crash();
        await delay(1_000);
        worker = await startWorkerProcess(env);
        const result = await handle.result();
        assert.equal(result.phase, crash.rollsBack ? 'rolled-back' : 'succeeded', result.reason);
        // The kill cut off the work of its moment: an activity of the step that the next worker finished, or its wait.
        const landing = killLanded((await handle.fetchHistory()).events ?? [], {
          killedAt,
          killed,
          work: crash.work,
        });
        assert.ok(landing.landed, `the kill landed mid-work: ${landing.evidence}`);
      } finally {
        await worker.stop();
      }
      const ends = crash.rollsBack ? 'v1' : 'v2';
      await until(async () => (await liveImages(namespace)).length === replicas);
      assert.deepEqual(await liveImages(namespace), Array<string>(replicas).fill(`${seededImage}:${ends}`));
      const sets = await kc.makeApiClient(AppsV1Api).listNamespacedReplicaSet({ namespace });
      const owners = sets.items.map((set) => set.metadata?.ownerReferences?.[0]?.name ?? '');
      assert.equal(
        new Set(owners).size,
        owners.length,
        `one ReplicaSet per Deployment: ${owners.join(', ')}`,
      );
      const deployments = await kc.makeApiClient(AppsV1Api).listNamespacedDeployment({ namespace });
      const serving = deployments.items.filter((d) => (d.spec?.replicas ?? 0) > 0);
      assert.equal(
        serving.length,
        1,
        `one Deployment serving: ${serving.map((d) => d.metadata?.name).join(', ')}`,
      );
    });
  });
});
