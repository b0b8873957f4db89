import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import type { KubernetesObject } from '@kubernetes/client-node';
import { AppsV1Api, CoreV1Api, KubeConfig, KubernetesObjectApi, Watch } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { isReady, isTerminating } from '../../activities/kubernetes/objects';
import type { LocalCluster } from '../../infra/kubernetes-cluster';
import { startLocalCluster } from '../../infra/kubernetes-cluster';
import { delay } from '../../infra/processes';
import type { TestTemporal } from './temporal';
import { connectTestTemporal } from './temporal';

export interface CapacityReport {
  /** Fewest pods that were Ready, not terminating and selected by the Service, at any moment watched. */
  readonly minServing: number;
  /** Most pods that existed (not terminating) at any moment watched. */
  readonly maxPods: number;
  /** Pods that left the Service's selector while still running, before their deletion began. */
  readonly detachedBeforeDeletion: readonly string[];
  readonly events: number;
}

/**
 * Watches every pod of a namespace through a rollout, as an outside observer would, and records the extremes
 * the fence posts promise to bound. `stop` fails when the watch ended before it (its figures would have frozen at
 * whatever it last saw) or when what it last saw differs from a fresh list of the pods.
 */
export async function watchCapacity(
  kc: KubeConfig,
  namespace: string,
  serviceSelector: Record<string, string> | { readonly service: string },
): Promise<{ stop(): Promise<CapacityReport> }> {
  if (
    'service' in serviceSelector ? serviceSelector.service === '' : Object.keys(serviceSelector).length === 0
  )
    throw new Error('watchCapacity: an empty selector would count every Ready pod as serving');
  // A Service's selector is followed as it changes (blue/green switches it): serving is what it selects now.
  let selector: Record<string, string> = {};
  const service = 'service' in serviceSelector ? String(serviceSelector.service) : undefined;
  if (service === undefined) selector = serviceSelector as Record<string, string>;
  else {
    const read = await kc.makeApiClient(CoreV1Api).readNamespacedService({ namespace, name: service });
    selector = read.spec?.selector ?? {};
  }
  const pods = new Map<string, V1Pod>();
  const detached = new Set<string>();
  const selected = (pod: V1Pod) =>
    Object.keys(selector).length > 0 &&
    Object.entries(selector).every(([key, value]) => pod.metadata?.labels?.[key] === value);
  let minServing = Number.POSITIVE_INFINITY;
  let maxPods = 0;
  let events = 0;
  const measure = () => {
    const live = [...pods.values()].filter((p) => !isTerminating(p));
    maxPods = Math.max(maxPods, live.length);
    minServing = Math.min(minServing, live.filter((p) => isReady(p) && selected(p)).length);
  };
  // Set by either watch's end callback: the API server closed it, or it failed.
  let ended: string | undefined;
  const initial = await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace });
  for (const pod of initial.items) pods.set(pod.metadata?.name ?? '', pod);
  measure();
  const controller = await new Watch(kc).watch(
    `/api/v1/namespaces/${namespace}/pods`,
    { resourceVersion: initial.metadata?.resourceVersion },
    (type, pod: V1Pod) => {
      events++;
      const name = pod.metadata?.name ?? '';
      const before = pods.get(name);
      if (type === 'DELETED') pods.delete(name);
      else pods.set(name, pod);
      if (before && selected(before) && !selected(pod) && !isTerminating(pod)) detached.add(name);
      measure();
    },
    (error: unknown) => {
      ended ??= error instanceof Error ? error.message : 'the server closed it';
    },
  );
  const serviceWatch =
    service === undefined
      ? undefined
      : await new Watch(kc).watch(
          `/api/v1/namespaces/${namespace}/services`,
          {},
          (_type, object: V1Service) => {
            if (object.metadata?.name !== service) return;
            selector = object.spec?.selector ?? {};
            measure();
          },
          (error: unknown) => {
            ended ??= `the Service watch: ${error instanceof Error ? error.message : 'the server closed it'}`;
          },
        );
  return {
    stop: async () => {
      if (ended !== undefined) {
        serviceWatch?.abort();
        controller.abort();
        throw new Error(`the pod watch of ${namespace} ended before the rollout did: ${ended}`);
      }
      // The watch is still open: what it holds now must be what the API server lists now.
      const seen = () =>
        [...pods.values()]
          .map(
            (p) =>
              `${p.metadata?.name} ${isTerminating(p) ? 'terminating' : isReady(p) ? 'ready' : 'not-ready'}`,
          )
          .sort()
          .join(', ');
      let fresh = '';
      for (let attempt = 0; attempt < 50; attempt++) {
        const listed = await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace });
        fresh = listed.items
          .map(
            (p) =>
              `${p.metadata?.name} ${isTerminating(p) ? 'terminating' : isReady(p) ? 'ready' : 'not-ready'}`,
          )
          .sort()
          .join(', ');
        if (fresh === seen()) break;
        // Events in flight reach the watch a moment after the list shows them.
        await delay(100);
      }
      controller.abort();
      serviceWatch?.abort();
      if (fresh !== seen())
        throw new Error(
          `the pod watch of ${namespace} fell behind: it holds [${seen()}], the API lists [${fresh}]`,
        );
      return { minServing, maxPods, detachedBeforeDeletion: [...detached], events };
    },
  };
}

/** Waits until a Deployment reports `replicas` available pods. */
export async function waitAvailable(kc: KubeConfig, namespace: string, name: string, replicas: number) {
  const apps = kc.makeApiClient(AppsV1Api);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const d = await apps.readNamespacedDeployment({ namespace, name });
    if ((d.status?.availableReplicas ?? 0) === replicas && (d.status?.replicas ?? 0) === replicas) return;
    if (Date.now() > deadline) throw new Error(`${name}: ${JSON.stringify(d.status)}`);
    await delay(200);
  }
}

/** The image of the app `seedApp` makes; versions are its tags. */
export const seededImage = 'registry.local/web';

/**
 * The target of a spec for the app `seedApp` made in `namespace`: Deployment `web` (container `app`) behind
 * Service `web`, named after the namespace so each test's rollout has its own workflow id.
 */
export function seededAppTarget(namespace: string, readyTimeout = '6s') {
  return {
    kind: 'kubernetes' as const,
    name: `web-${namespace}`,
    namespace,
    deployment: 'web',
    container: 'app',
    image: seededImage,
    service: 'web',
    readyTimeout,
  };
}

/**
 * A namespace holding what a user has before Baton: Deployment `web` (selector app=web) with `replicas` pods of
 * `<image>:v1`, behind Service `web`, every pod available.
 */
export async function seedApp(
  kc: KubeConfig,
  namespace: string,
  app: { replicas: number; image: string },
): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  if (namespace !== 'default') await core.createNamespace({ body: { metadata: { name: namespace } } });
  await core.createNamespacedService({
    namespace,
    body: {
      metadata: { name: 'web' },
      spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] },
    },
  });
  await kc.makeApiClient(AppsV1Api).createNamespacedDeployment({
    namespace,
    body: {
      metadata: { name: 'web', labels: { app: 'web' } },
      spec: {
        replicas: app.replicas,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: { containers: [{ name: 'app', image: `${app.image}:v1`, ports: [{ containerPort: 8080 }] }] },
        },
      },
    },
  });
  await waitAvailable(kc, namespace, 'web', app.replicas);
}

/** Each Deployment of a namespace: desired replicas and available pods. */
export async function deploymentsOf(
  kc: KubeConfig,
  namespace: string,
): Promise<Record<string, { replicas: number | undefined; available: number }>> {
  const list = await kc.makeApiClient(AppsV1Api).listNamespacedDeployment({ namespace });
  return Object.fromEntries(
    list.items.map((d) => [
      d.metadata?.name ?? '',
      { replicas: d.spec?.replicas, available: d.status?.availableReplicas ?? 0 },
    ]),
  );
}

export interface TestCluster {
  readonly cluster: LocalCluster;
  readonly kc: KubeConfig;
  readonly temporal: TestTemporal;
  /** The cluster's folder, for files a test wants beside it. */
  readonly dir: string;
  readonly stop: () => Promise<void>;
}

/**
 * A real control plane (with the machine's real node, when asked), and the test Temporal, for one test file; under
 * BATON_TEST_FLEETS_DIR so the runner sweeps it if the file crashes.
 */
export async function startTestCluster(
  name: string,
  options: { realNode?: boolean } = {},
): Promise<TestCluster> {
  const root = process.env.BATON_TEST_FLEETS_DIR ?? tmpdir();
  await mkdir(root, { recursive: true });
  const dir = await mkdtemp(join(root, 'cluster-'));
  const [cluster, temporal] = await Promise.all([
    startLocalCluster({ dir, name, realNode: options.realNode }),
    connectTestTemporal(),
  ]);
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfig);
  return {
    cluster,
    kc,
    temporal,
    dir,
    stop: async () => {
      await cluster.stop();
      await temporal.close();
    },
  };
}

const deployDir = join(__dirname, '..', '..', 'deploy');

/** The objects of a file of deploy/, as `kubectl apply -f` reads them. */
export const deployManifests = (file: string): KubernetesObject[] =>
  parseAllDocuments(readFileSync(join(deployDir, file), 'utf8')).map((doc) => doc.toJS() as KubernetesObject);

/** Creates each object, in `namespace` when given, as the cluster's admin. */
export async function applyManifests(
  admin: KubeConfig,
  objects: readonly KubernetesObject[],
  namespace?: string,
): Promise<void> {
  const api = admin.makeApiClient(KubernetesObjectApi);
  for (const object of objects)
    await api.create({ ...object, metadata: { ...object.metadata, ...(namespace ? { namespace } : {}) } });
}

/** A kubeconfig that acts as a ServiceAccount, with a token the API server issued for it. */
export async function serviceAccountConfig(
  admin: KubeConfig,
  namespace: string,
  name: string,
): Promise<KubeConfig> {
  const token = await admin.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
    namespace,
    name,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const server = admin.getCurrentCluster();
  if (!server || !token.status?.token) throw new Error(`no token for ServiceAccount ${namespace}/${name}`);
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [server],
    users: [{ name, token: token.status.token }],
    contexts: [{ name, cluster: server.name, user: name }],
    currentContext: name,
  });
  return config;
}
