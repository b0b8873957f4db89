import { createHash } from 'node:crypto';
import type { V1Deployment, V1Pod } from '@kubernetes/client-node';

/** Labels and annotations Baton puts on what it creates, so `kubectl get -l` finds a rollout's objects. */
export const batonLabels = {
  managedBy: 'app.kubernetes.io/managed-by',
  app: 'baton.dev/app',
  version: 'baton.dev/version',
} as const;

export const batonAnnotations = {
  /** The exact version (a label value can't hold every version string). */
  version: 'baton.dev/version',
  /** The workflow id of the rollout that created or last changed the object. */
  rollout: 'baton.dev/rollout',
  /** The Service labels Baton removed from a pod to take it out of the Service before it goes. */
  detachedFrom: 'baton.dev/detached-from-service',
} as const;

/** The ReplicaSet controller deletes pods with the lowest cost first, after pending and unready ones. */
export const podDeletionCost = 'controller.kubernetes.io/pod-deletion-cost';
export const retiringPodCost = '-1000000';

/** A label value for a version: at most 63 of [a-z0-9A-Z._-], starting and ending alphanumeric. */
export function versionLabel(version: string): string {
  const cleaned = version.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  if (cleaned === version && cleaned.length <= 63) return cleaned;
  const hash = shortHash(version);
  return `${cleaned.slice(0, 63 - hash.length - 1).replace(/[^A-Za-z0-9]+$/, '')}-${hash}`;
}

/**
 * The Deployment that runs one version of an app: `<app>-<version>` (web-v2, web-1.4.0), DNS-safe. A version that had
 * to be changed to fit (upper case, "+", "_", over 40 characters) gets a short hash so two versions never share a name; the name
 * stays within 63 characters so pod names stay readable.
 */
export function versionDeploymentName(app: string, version: string): string {
  const slug = version
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '');
  const exact = slug === version && slug.length <= 40;
  const suffix = exact ? slug : `${slug.slice(0, 40).replace(/[-.]+$/, '')}-${shortHash(version)}`;
  const name = `${app}-${suffix}`;
  if (name.length <= 63) return name;
  return `${app.slice(0, 63 - suffix.length - 1).replace(/[-.]+$/, '')}-${suffix}`;
}

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 8);
}

/** The tag of an image reference: registry.local:5000/web:v2 -> v2; none -> undefined. */
export function imageTag(image: string): string | undefined {
  const lastPart = image.slice(image.lastIndexOf('/') + 1);
  const at = lastPart.indexOf('@');
  const named = at === -1 ? lastPart : lastPart.slice(0, at);
  const colon = named.lastIndexOf(':');
  return colon === -1 ? undefined : named.slice(colon + 1);
}

/** The version a Deployment runs: Baton's annotation when Baton made it, else the tag of the container's image. */
export function deploymentVersion(deployment: V1Deployment, container: string): string | undefined {
  const annotated = deployment.metadata?.annotations?.[batonAnnotations.version];
  if (annotated) return annotated;
  const image = deployment.spec?.template.spec?.containers.find((c) => c.name === container)?.image;
  return image === undefined ? undefined : imageTag(image);
}

const withoutBatonKeys = (record: Record<string, string> | undefined): Record<string, string> =>
  Object.fromEntries(
    Object.entries(record ?? {}).filter(
      ([key]) => !key.startsWith('baton.dev/') && key !== podDeletionCost && key !== batonLabels.managedBy,
    ),
  );

/**
 * The Deployment of a new version, built from the one it replaces: the same pod template (so the Service that
 * selects the old pods selects the new ones), the container's image at the new tag, Baton's labels, its own
 * selector (app + version, so the two Deployments never own each other's pods). The strategy scales it.
 */
export function versionDeployment(input: {
  readonly stable: V1Deployment;
  readonly app: string;
  readonly container: string;
  readonly image: string;
  readonly version: string;
  readonly rollout: string;
  readonly minReadySeconds: number;
  readonly replicas: number;
}): V1Deployment {
  const { stable, app, version } = input;
  const template = stable.spec?.template;
  if (!template?.spec) throw new Error(`Deployment ${stable.metadata?.name} has no pod template`);
  const ownLabels = {
    [batonLabels.managedBy]: 'baton',
    [batonLabels.app]: app,
    [batonLabels.version]: versionLabel(version),
  };
  const annotations = { [batonAnnotations.version]: version, [batonAnnotations.rollout]: input.rollout };
  const containers = template.spec.containers.map((c) =>
    c.name === input.container ? { ...c, image: `${input.image}:${version}` } : c,
  );
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: versionDeploymentName(app, version),
      namespace: stable.metadata?.namespace,
      labels: { ...withoutBatonKeys(stable.metadata?.labels), ...ownLabels },
      annotations,
    },
    spec: {
      replicas: input.replicas,
      minReadySeconds: input.minReadySeconds,
      revisionHistoryLimit: 2,
      selector: { matchLabels: { [batonLabels.app]: app, [batonLabels.version]: versionLabel(version) } },
      template: {
        metadata: {
          labels: { ...withoutBatonKeys(template.metadata?.labels), ...ownLabels },
          annotations: {
            ...withoutBatonKeys(template.metadata?.annotations),
            [batonAnnotations.version]: version,
          },
        },
        spec: { ...template.spec, containers },
      },
    },
  };
}

export const isTerminating = (pod: V1Pod): boolean => pod.metadata?.deletionTimestamp !== undefined;
export const isReady = (pod: V1Pod): boolean =>
  pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

/**
 * The pods that go when a Deployment scales down to `keep` replicas, in the order the ReplicaSet controller would
 * pick them once their deletion cost is lowered: pods already chosen (by an earlier attempt, or by an earlier step
 * whose scale-down the controllers have not yet carried out), then pods not Ready, then the newest. Counting from
 * the pods that still run, not from the Deployment's replicas, keeps an earlier step's pods, still waiting to be
 * deleted, from standing in for this step's. Only pods of `replicaSets` (the Deployment's own, by uid) count: a
 * label selector also matches the pods of another version's Deployment made from the same template.
 */
export function podsToRetire(
  pods: readonly V1Pod[],
  keep: number,
  replicaSets: ReadonlySet<string>,
): V1Pod[] {
  const rank = (pod: V1Pod) => (isRetiring(pod) ? 0 : isReady(pod) ? 2 : 1);
  const created = (pod: V1Pod) => new Date(pod.metadata?.creationTimestamp ?? 0).getTime();
  const running = pods
    .filter((pod) => !isTerminating(pod))
    .filter((pod) => pod.metadata?.ownerReferences?.some((owner) => replicaSets.has(owner.uid)) ?? false);
  return running
    .sort((a, b) => rank(a) - rank(b) || created(b) - created(a))
    .slice(0, Math.max(0, running.length - Math.max(0, keep)));
}

/** Marked to go by an earlier retirement. */
export const isRetiring = (pod: V1Pod): boolean =>
  pod.metadata?.annotations?.[podDeletionCost] === retiringPodCost;

/** `{a: "1", b: "2"}` -> `a=1,b=2`, for list calls. */
export function labelSelector(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([key, value]) => `${key}=${value}`)
    .join(',');
}
