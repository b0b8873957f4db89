import type { KubeConfig, V1Deployment } from '@kubernetes/client-node';
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import { isReady, isTerminating, labelSelector } from '../../activities/kubernetes/objects';
import type { KubernetesTargetInput } from '../../spec/rollout';
import { delay } from '../processes';
import { demoAppPort, demoImageRepository } from './demo-image';

/** What `deployDemoApp` made: Deployment and Service `web`, container `app`. */
export interface DemoApp {
  readonly namespace: string;
  readonly deployment: 'web';
  readonly service: 'web';
  readonly container: 'app';
  readonly image: typeof demoImageRepository;
  /** The Service's ClusterIP address, which kube-proxy routes from this machine. */
  readonly url: string;
}

/**
 * The labels the Service selects on. `serving` is one the Deployment's selector leaves out: Baton removes it from a
 * pod to take the pod out of the Service while its ReplicaSet still owns it. Without such a label pods leave the
 * Service only as they terminate, as in a native rolling update.
 */
export const demoServiceSelector = { app: 'web', serving: 'true' } as const;

/** Where the pods go: this machine's real node, or kwok's fake nodes (many pods cheaply, no process, no traffic). */
export type DemoNodes = 'real' | 'kwok';

/** The demo app's Deployment as a user writes one: real probes, no preStop hook. */
export function demoDeployment(
  replicas: number,
  version: string,
  nodes: DemoNodes = 'real',
  rollingUpdate?: { maxSurge: string; maxUnavailable: string },
): V1Deployment {
  return {
    metadata: { name: 'web', labels: { app: 'web' } },
    spec: {
      replicas,
      ...(rollingUpdate ? { strategy: { type: 'RollingUpdate', rollingUpdate } } : {}),
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { ...demoServiceSelector } },
        spec: {
          nodeSelector: { type: nodes },
          terminationGracePeriodSeconds: 30,
          containers: [
            {
              name: 'app',
              image: `${demoImageRepository}:${version}`,
              imagePullPolicy: 'Never',
              ports: [{ containerPort: demoAppPort }],
              readinessProbe: {
                httpGet: { path: '/healthz', port: demoAppPort },
                periodSeconds: 1,
                failureThreshold: 2,
              },
              livenessProbe: {
                httpGet: { path: '/healthz', port: demoAppPort },
                initialDelaySeconds: 5,
                periodSeconds: 5,
              },
            },
          ],
        },
      },
    },
  };
}

/**
 * Makes `namespace` (if it is not `default`) with the demo app at `version`, `replicas` pods behind Service `web`,
 * and waits until every pod is available.
 */
export async function deployDemoApp(
  kc: KubeConfig,
  options: {
    namespace: string;
    replicas: number;
    version: string;
    nodes?: DemoNodes;
    rollingUpdate?: { maxSurge: string; maxUnavailable: string };
    timeoutMs?: number;
  },
): Promise<DemoApp> {
  const nodes = options.nodes ?? 'real';
  const { namespace } = options;
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  if (namespace !== 'default') await core.createNamespace({ body: { metadata: { name: namespace } } });
  const service = await core.createNamespacedService({
    namespace,
    body: {
      metadata: { name: 'web' },
      spec: { selector: { ...demoServiceSelector }, ports: [{ port: 80, targetPort: demoAppPort }] },
    },
  });
  await apps.createNamespacedDeployment({
    namespace,
    body: demoDeployment(options.replicas, options.version, nodes, options.rollingUpdate),
  });
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  for (;;) {
    const status = (await apps.readNamespacedDeployment({ namespace, name: 'web' })).status;
    if ((status?.availableReplicas ?? 0) === options.replicas && (status?.replicas ?? 0) === options.replicas)
      break;
    if (Date.now() > deadline)
      throw new Error(`the demo app in ${namespace} did not become available: ${JSON.stringify(status)}`);
    await delay(250);
  }
  const url = `http://${service.spec?.clusterIP}/`;
  // kwok's pods run no process: nothing answers there.
  if (nodes === 'real') await untilRouted(url, options.version, deadline);
  return {
    namespace,
    deployment: 'web',
    service: 'web',
    container: 'app',
    image: demoImageRepository,
    url,
  };
}

/**
 * Available pods are not yet a routed Service: kube-proxy programs its ClusterIP a moment later, and until then
 * this machine sends the request out of its default route. Each probe opens a new connection: NAT rules apply to a
 * connection's first packet only, so a kept-alive connection made before the rule existed would never reach a pod
 * (an egress proxy that answers it keeps it open for ever).
 */
export async function untilRouted(url: string, version: string, deadline: number): Promise<void> {
  let seen = 'nothing yet';
  for (;;) {
    try {
      const answer = await fetch(url, {
        signal: AbortSignal.timeout(2_000),
        headers: { connection: 'close' },
      });
      await answer.arrayBuffer();
      const served = answer.headers.get('x-app-version');
      if (answer.ok && served === version) return;
      seen = `HTTP ${answer.status}, version ${served ?? 'none'}`;
    } catch (error) {
      seen = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() > deadline)
      throw new Error(`the Service at ${url} does not answer with ${version}; it last answered: ${seen}`);
    await delay(250);
  }
}

/** Where a demo pod's request figures are, for a target's `metrics`: its own /metrics, by version and code. */
export const demoAppMetrics = {
  requests: 'demo_requests_total',
  duration: 'demo_request_duration_seconds',
} as const;

/** A spec's target for the app `deployDemoApp` made, named `name`; `more` sets or overrides fields. */
export function demoAppTarget(
  app: DemoApp,
  name: string,
  more: Partial<Omit<KubernetesTargetInput, 'kind'>> = {},
): KubernetesTargetInput {
  return {
    kind: 'kubernetes',
    name,
    namespace: app.namespace,
    deployment: app.deployment,
    container: app.container,
    image: app.image,
    service: app.service,
    readyTimeout: '60s',
    ...more,
  };
}

/** The version each Ready pod behind the Service reports at its own address, one entry per pod. */
export async function servingVersions(kc: KubeConfig, app: DemoApp): Promise<string[]> {
  const pods = await kc.makeApiClient(CoreV1Api).listNamespacedPod({
    namespace: app.namespace,
    labelSelector: labelSelector(demoServiceSelector),
  });
  return Promise.all(
    pods.items
      .filter((pod) => isReady(pod) && !isTerminating(pod))
      .map(async (pod) => {
        const answer = await fetch(`http://${pod.status?.podIP}:${demoAppPort}/healthz`).catch(
          () => undefined,
        );
        return answer?.headers.get('x-app-version') ?? `(pod ${pod.metadata?.name} did not answer)`;
      }),
  );
}
