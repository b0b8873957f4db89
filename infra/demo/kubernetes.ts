import { KubeConfig } from '@kubernetes/client-node';
import type { ActivityDeps } from '../../activities';
import { realActivityDeps } from '../../activities';
import { kubernetesClients } from '../../activities/kubernetes/api';
import type { RolloutSpecInput } from '../../spec';
import { startLocalCluster } from '../kubernetes-cluster';
import { demoAppTarget, deployDemoApp, servingVersions } from '../kubernetes/demo-app-objects';
import { demoImageTags } from '../kubernetes/demo-image';

export interface KubernetesDemo {
  /** The Service's ClusterIP, where the demo's load goes. */
  readonly url: string;
  readonly kubeconfig: string;
  readonly target: RolloutSpecInput['target'];
  readonly deps: ActivityDeps;
  /** Pods behind the Service that report `version` at their own address. */
  podsOn(version: string): Promise<number>;
  stop(): Promise<void>;
}

/** The versions a demo pod can run: the tags of the demo app's image that serve. */
export const kubernetesDemoVersions = demoImageTags.filter((tag) => /^v\d$/.test(tag));

/** The demo's strategy on Kubernetes: the same as the fleet's, in the fields a Kubernetes target takes. */
export function kubernetesDemoStrategy(strategy: string): RolloutSpecInput['strategy'] {
  if (strategy === 'recreate') return { type: 'recreate' };
  if (strategy === 'blue-green') return { type: 'blue-green', scaleDownDelay: '3s' };
  if (strategy === 'surge') return { type: 'surge' };
  if (strategy === 'canary')
    return {
      type: 'canary',
      steps: [
        { setWeight: 25 },
        { analysis: { window: '5s' } },
        { setWeight: 50 },
        { analysis: { window: '5s' } },
      ],
    };
  return { type: 'rolling' };
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
