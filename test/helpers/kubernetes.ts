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

/** A pod as the capacity checks see it: its name and whether it is terminating, Ready or neither. */
const podState = (p: V1Pod) =>
  `${p.metadata?.name} ${isTerminating(p) ? 'terminating' : isReady(p) ? 'ready' : 'not-ready'}`;

/**
 * What a watch of a namespace's pods has seen, fed one event at a time: the extremes the fence posts promise to
 * bound, counted as pods the Service's selector picks now. Pure, so that a stream that should fail can be fed to it.
 */
export class CapacityTracker {
  private readonly pods = new Map<string, V1Pod>();
  private readonly detached = new Set<string>();
  private minServing = Number.POSITIVE_INFINITY;
  private maxPods = 0;
  private events = 0;
  /** Why the watch ended before it was stopped: the API server closed it, or it failed. */
  private ended: string | undefined;

  constructor(
    private selector: Record<string, string>,
    initial: readonly V1Pod[],
  ) {
    for (const pod of initial) this.pods.set(pod.metadata?.name ?? '', pod);
    this.measure();
  }

  private selected(pod: V1Pod): boolean {
    return (
      Object.keys(this.selector).length > 0 &&
      Object.entries(this.selector).every(([key, value]) => pod.metadata?.labels?.[key] === value)
    );
  }

  private measure(): void {
    const live = [...this.pods.values()].filter((p) => !isTerminating(p));
    this.maxPods = Math.max(this.maxPods, live.length);
    this.minServing = Math.min(this.minServing, live.filter((p) => isReady(p) && this.selected(p)).length);
  }

  pod(type: string, pod: V1Pod): void {
    this.events++;
    const name = pod.metadata?.name ?? '';
    const before = this.pods.get(name);
    if (type === 'DELETED') this.pods.delete(name);
    else this.pods.set(name, pod);
    if (before && this.selected(before) && !this.selected(pod) && !isTerminating(pod))
      this.detached.add(name);
    this.measure();
  }

  /** The Service's selector changed (a blue/green switch): serving is what it selects from now on. */
  selectorChanged(selector: Record<string, string>): void {
    this.selector = selector;
    this.measure();
  }

  end(reason: string): void {
    this.ended ??= reason;
  }

  /** What it holds now, in the form `fresh` compares. */
  seen(): string {
    return [...this.pods.values()].map(podState).sort().join(', ');
  }

  /**
   * The report, once the watch is known to have run to the end and to hold what a fresh list of the pods shows;
   * otherwise its figures froze at whatever it last saw, and it throws saying so.
   */
  report(fresh: readonly V1Pod[]): CapacityReport {
    if (this.ended !== undefined)
      throw new Error(`the pod watch ended before the rollout did: ${this.ended}`);
    const listed = fresh.map(podState).sort().join(', ');
    if (listed !== this.seen())
      throw new Error(`the pod watch fell behind: it holds [${this.seen()}], the API lists [${listed}]`);
    return {
      minServing: this.minServing,
      maxPods: this.maxPods,
      detachedBeforeDeletion: [...this.detached],
      events: this.events,
    };
  }
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
  const core = kc.makeApiClient(CoreV1Api);
  // A Service's selector is followed as it changes (blue/green switches it): serving is what it selects now.
  const service = 'service' in serviceSelector ? String(serviceSelector.service) : undefined;
  const selector =
    service === undefined
      ? (serviceSelector as Record<string, string>)
      : ((await core.readNamespacedService({ namespace, name: service })).spec?.selector ?? {});
  const initial = await core.listNamespacedPod({ namespace });
  const tracker = new CapacityTracker(selector, initial.items);
  const ended = (what: string) => (error: unknown) =>
    tracker.end(`${what}: ${error instanceof Error ? error.message : 'the server closed it'}`);
  const controller = await new Watch(kc).watch(
    `/api/v1/namespaces/${namespace}/pods`,
    { resourceVersion: initial.metadata?.resourceVersion },
    (type, pod: V1Pod) => tracker.pod(type, pod),
    ended('the pod watch'),
  );
  const serviceWatch =
    service === undefined
      ? undefined
      : await new Watch(kc).watch(
          `/api/v1/namespaces/${namespace}/services`,
          {},
          (_type, object: V1Service) => {
            if (object.metadata?.name === service) tracker.selectorChanged(object.spec?.selector ?? {});
          },
          ended('the Service watch'),
        );
  return {
    stop: async () => {
      try {
        // Events in flight reach the watch a moment after a list shows them: a few tries before it counts as behind.
        for (let attempt = 1; ; attempt++) {
          const fresh = (await core.listNamespacedPod({ namespace })).items;
          try {
            return tracker.report(fresh);
          } catch (error) {
            if (attempt >= 50 || !/fell behind/.test((error as Error).message))
              throw new Error(`${namespace}: ${(error as Error).message}`);
          }
          await delay(100);
        }
      } finally {
        controller.abort();
        serviceWatch?.abort();
      }
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
