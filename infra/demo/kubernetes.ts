import { KubeConfig } from '@kubernetes/client-node';
import type { ActivityDeps } from '../../activities';
import { realActivityDeps } from '../../activities';
import { kubernetesClients } from '../../activities/kubernetes/api';
import type { RolloutSpecInput } from '../../spec';
import type { KubernetesTargetInput } from '../../spec/rollout';
import { ensureKubernetesBinaries } from '../components';
import { startLocalCluster } from '../kubernetes-cluster';
import {
  demoAppMetrics,
  demoAppTarget,
  deployDemoApp,
  servingVersions,
} from '../kubernetes/demo-app-objects';
import { demoImageTags } from '../kubernetes/demo-image';

export interface KubernetesDemo {
  /** The Service's ClusterIP, where the demo's load goes. */
  readonly url: string;
  readonly kubeconfig: string;
  /** The kubectl built for the cluster, for commands the kept demo prints. */
  readonly kubectl: string;
  readonly target: KubernetesTargetInput;
  readonly deps: ActivityDeps;
  /** Pods behind the Service that report `version` at their own address. */
  podsOn(version: string): Promise<number>;
  stop(): Promise<void>;
}

/** The versions a demo pod can run: the tags of the demo app's image that serve. */
export const kubernetesDemoVersions = demoImageTags.filter((tag) => /^v\d$/.test(tag));

/**
 * The demo's rollout on Kubernetes: the fleet's strategy, in the fields a Kubernetes target takes. The canary's
 * analyses judge the new pods by the request figures each pod serves at /metrics, against the old pods'.
 */
export function kubernetesDemoInput(
  target: KubernetesTargetInput,
  strategy: string,
  version: string,
): RolloutSpecInput {
  if (strategy === 'canary')
    return {
      target: { ...target, metrics: demoAppMetrics },
      version,
      strategy: {
        type: 'canary',
        steps: [
          { setWeight: 25 },
          { analysis: { window: '5s' } },
          { setWeight: 50 },
          { analysis: { window: '5s' } },
        ],
      },
    };
  const strategies: Record<string, RolloutSpecInput['strategy']> = {
    recreate: { type: 'recreate' },
    'blue-green': { type: 'blue-green', scaleDownDelay: '3s' },
    surge: { type: 'surge' },
  };
  return { target, version, strategy: strategies[strategy] ?? { type: 'rolling' } };
}

/**
 * The local control plane with this machine's real node, and the demo app on it: `replicas` pods of `version`
 * behind Service `web`, each a container started from the demo app's image.
 */
export async function startKubernetesDemo(options: {
  dir: string;
  replicas: number;
  version: string;
}): Promise<KubernetesDemo> {
  const cluster = await startLocalCluster({ dir: options.dir, name: 'baton-demo', realNode: true });
  try {
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfig);
    const app = await deployDemoApp(kc, {
      namespace: 'default',
      replicas: options.replicas,
      version: options.version,
    });
    return {
      url: app.url,
      kubeconfig: cluster.kubeconfig,
      kubectl: (await ensureKubernetesBinaries()).kubectl,
      target: demoAppTarget(app, 'demo-web'),
      deps: { ...realActivityDeps(), kubernetes: () => kubernetesClients(kc) },
      podsOn: async (version) => (await servingVersions(kc, app)).filter((v) => v === version).length,
      stop: () => cluster.stop(),
    };
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}
