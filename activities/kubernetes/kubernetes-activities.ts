import pLimit from 'p-limit';
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import type { V1Deployment, V1EndpointSlice, V1Pod, V1ReplicaSet } from '@kubernetes/client-node';
import { Watch } from '@kubernetes/client-node';
import type { HttpVerification, KubernetesTarget, PodMetrics } from '../../spec/rollout';
import type { ServerCounters } from '../../spec';
import { podCounters } from '../metrics/pod-counters';
import type { MetricsReader, Verifier } from '../ports';
import { verifyAt } from '../verify/verify-at';
import type { KubernetesClients } from './api';
import { apiStatus, kubernetesCall, kubernetesFailureTypes, mergePatch, retryOnConflict } from './api';
import {
  batonAnnotations,
  batonLabels,
  deploymentVersion,
  imageTag,
  isReady,
  isTerminating,
  labelSelector,
  podDeletionCost,
  podsToRetire,
  isRetiring,
  retiringPodCost,
  versionDeployment,
  versionDeploymentName,
} from './objects';

export interface DeploymentRef {
  readonly namespace: string;
  readonly name: string;
}

/** What the workflow needs to know before it changes anything. */
export interface KubernetesPreflight {
  /** The Deployment serving now, whose pods the rollout replaces. */
  readonly stable: string;
  readonly fromVersion: string;
  /** The Service's selector as the user wrote it (without a blue/green pin), when the spec names a Service. */
  readonly serviceSelector?: Record<string, string>;
  /** Desired replicas, taken from the stable Deployment. */
  readonly replicas: number;
  /** The Deployment the new version will run in (`<app>-<version>`). */
  readonly next: string;
}

/** Request counters of the serving pods of some Deployments, read at one moment. */
export interface PodMetricsSample {
  /** The pods read, by Deployment. */
  readonly pods: Record<string, string[]>;
  readonly counters: Record<string, ServerCounters>;
  /** Pods whose metrics could not be read, with why. */
  readonly unreadable: Record<string, string>;
}

export interface ReplicaCount {
  readonly replicas: number;
  readonly available: number;
}

const heartbeatEveryMs = 5_000;

interface ScaleInput extends DeploymentRef {
  readonly replicas: number;
  /** Scaling down: the Service the pods going are taken out of first. */
  readonly service?: string;
  readonly detachDelayMs?: number;
}

interface WaitInput extends DeploymentRef {
  readonly replicas: number;
  readonly available: boolean;
  readonly timeoutMs: number;
  /** Return as soon as more pods than this are available, before all of them are. */
  readonly availableAbove?: number;
}

const replicaCount = (deployment: V1Deployment): ReplicaCount => ({
  replicas: deployment.spec?.replicas ?? 0,
  available: deployment.status?.availableReplicas ?? 0,
});

/**
 * The activities of a Kubernetes rollout. Each states a desired state ("web-v2 has 3 replicas", "web-v2 has 3
 * available pods"), so a retry after a crash changes nothing twice; the objects Baton creates have fixed names
 * (`<app>-<version>`), so a retried create finds its own object instead of making a second one.
 */
export function createKubernetesActivities(deps: {
  kubernetes: () => KubernetesClients;
  /** For verify.http on each new pod; rollouts without it never call it. */
  verifier?: Verifier;
  /** For a canary analysis of the pods' own request figures (target.metrics). */
  metrics?: MetricsReader;
}) {
  const readDeployment = (ref: DeploymentRef) =>
    kubernetesCall(`reading Deployment ${ref.namespace}/${ref.name}`, () =>
      deps.kubernetes().apps.readNamespacedDeployment(ref),
    );

  /** Deletes a Deployment (its ReplicaSets and pods follow in the background); one already gone counts as deleted. */
  const deleteDeployment = async (ref: DeploymentRef): Promise<void> => {
    try {
      await deps.kubernetes().apps.deleteNamespacedDeployment({ ...ref, propagationPolicy: 'Background' });
    } catch (error) {
      if (apiStatus(error) === 404) return;
      await kubernetesCall(`deleting Deployment ${ref.name}`, () => Promise.reject(error as Error));
    }
  };

  /**
   * The Deployment has `replicas` replicas. Scaling down first picks the pods to go (lowest deletion cost),
   * takes them out of the Service by removing the Service's labels the Deployment does not select on, and
   * waits for the Service's endpoints to drop them, so no new request reaches a pod about to stop. Returns the
   * names of the pods chosen to go.
   */
  const scaleDeployment = async (input: ScaleInput): Promise<string[]> => {
    const { apps } = deps.kubernetes();
    const deployment = await readDeployment(input);
    const current = deployment.spec?.replicas ?? 0;
    if (current === input.replicas) return [];
    const retired =
      input.replicas < current
        ? await retirePods(
            deps.kubernetes(),
            deployment,
            input.replicas,
            input.service,
            input.detachDelayMs ?? 0,
          )
        : [];
    await kubernetesCall(`scaling Deployment ${input.name} to ${input.replicas}`, () =>
      apps.patchNamespacedDeployment(
        { namespace: input.namespace, name: input.name, body: { spec: { replicas: input.replicas } } },
        mergePatch,
      ),
    );
    return retired;
  };

  /**
   * Waits, with a watch, until the Deployment has exactly `replicas` pods (terminating ones aside, as the
   * Deployment controller counts) and, when `available`, all of them available: Ready for minReadySeconds.
   * Heartbeats; reacts to cancellation; fails with the pods that are not Ready once the timeout passes.
   */
  const waitForDeployment = async (input: WaitInput): Promise<ReplicaCount> => {
    const { availableAbove } = input;
    const latest = await waitUntilSettled(deps.kubernetes(), input, input.timeoutMs, (d) => {
      if ((d.spec?.replicas ?? 0) !== input.replicas) return false;
      const available = d.status?.availableReplicas ?? 0;
      if (availableAbove !== undefined && available > availableAbove) return true;
      return (
        (d.status?.replicas ?? 0) === input.replicas &&
        (!input.available ||
          (available >= input.replicas && (d.status?.updatedReplicas ?? 0) >= input.replicas))
      );
    });
    return replicaCount(latest);
  };

  /** How many replicas the Deployment wants and how many pods are available; 0/0 when it does not exist. */
  const readReplicas = async (input: DeploymentRef): Promise<ReplicaCount> => {
    try {
      return replicaCount(await deps.kubernetes().apps.readNamespacedDeployment(input));
    } catch (error) {
      if (apiStatus(error) === 404) return { replicas: 0, available: 0 };
      return kubernetesCall(`reading Deployment ${input.name}`, () => Promise.reject(error as Error));
    }
  };

  return {
    /**
     * Finds the Deployment serving the app now (the one named in the spec, or the Baton-made one with
     * replicas), checks the container and the Service, and names the Deployment the new version will run in.
     */
    preflightKubernetes: async (input: {
      target: KubernetesTarget;
      version: string;
    }): Promise<KubernetesPreflight> => {
      const { target } = input;
      const { apps, core } = deps.kubernetes();
      const reject = (message: string) =>
        ApplicationFailure.nonRetryable(message, kubernetesFailureTypes.preflight);
      const named = await apps
        .readNamespacedDeployment({ namespace: target.namespace, name: target.deployment })
        .catch((error: unknown) => {
          if (apiStatus(error) === 404) return undefined;
          return kubernetesCall(`reading Deployment ${target.namespace}/${target.deployment}`, () =>
            Promise.reject(error as Error),
          );
        });
      const managed = await kubernetesCall(`listing Deployments of ${target.deployment}`, () =>
        apps.listNamespacedDeployment({
          namespace: target.namespace,
          labelSelector: `${batonLabels.app}=${target.deployment}`,
        }),
      );
      const all = [
        ...(named ? [named] : []),
        ...managed.items.filter((d) => d.metadata?.name !== target.deployment),
      ];
      if (target.mode === 'native' && named && all.length > 1)
        throw reject(
          `target.mode native rolls Deployment ${target.deployment} itself, but Baton's side-by-side Deployments of it exist (${all
            .slice(1)
            .map((d) => d.metadata?.name)
            .join(', ')}): keep to side-by-side, or remove them`,
        );
      if (all.length === 0)
        throw reject(`Deployment ${target.deployment} not found in namespace ${target.namespace}`);
      const serving = all.filter((d) => (d.spec?.replicas ?? 0) > 0);
      if (serving.length === 0)
        throw reject(`every Deployment of ${target.deployment} is scaled to 0: there is nothing to roll`);
      if (serving.length > 1) {
        const names = serving.map((d) => `${d.metadata?.name} (${d.spec?.replicas})`).join(', ');
        throw reject(
          `${names} run at once (an earlier rollout did not finish): scale all but one to 0, or roll to one of their versions`,
        );
      }
      const stable = serving[0];
      const stableName = stable.metadata?.name ?? target.deployment;
      const containers = stable.spec?.template.spec?.containers.map((c) => c.name) ?? [];
      if (!containers.includes(target.container))
        throw reject(
          `target.container: Deployment ${stableName} has no container "${target.container}" (it has ${containers.join(', ')})`,
        );
      const fromVersion = deploymentVersion(stable, target.container);
      if (fromVersion === undefined)
        throw reject(`Deployment ${stableName}: the image of container ${target.container} has no tag`);
      let serviceSelector: Record<string, string> | undefined;
      if (target.service !== undefined) {
        const service = await core
          .readNamespacedService({ namespace: target.namespace, name: target.service })
          .catch((error: unknown) => {
            if (apiStatus(error) === 404)
              throw reject(
                `target.service: Service ${target.service} not found in namespace ${target.namespace}`,
              );
            throw error;
          });
        const selector = service.spec?.selector ?? {};
        // A Service a blue/green rollout left pinned to one ReplicaSet selects on pod-template-hash too.
        serviceSelector = Object.fromEntries(
          Object.entries(selector).filter(([key]) => key !== 'pod-template-hash'),
        );
        const podLabels = stable.spec?.template.metadata?.labels ?? {};
        const unmatched = Object.entries(serviceSelector).filter(([key, value]) => podLabels[key] !== value);
        if (Object.keys(serviceSelector).length === 0 || unmatched.length > 0)
          throw reject(
            `target.service: Service ${target.service} does not select the pods of ${stableName} (selector ${labelSelector(selector) || 'empty'})`,
          );
      }
      return {
        stable: stableName,
        ...(serviceSelector ? { serviceSelector } : {}),
        fromVersion,
        replicas: stable.spec?.replicas ?? 0,
        next: target.mode === 'native' ? stableName : versionDeploymentName(target.deployment, input.version),
      };
    },

    /** The new version's Deployment exists with the stable pod template at the new image, at 0 replicas if new. */
    ensureVersionDeployment: async (input: {
      target: KubernetesTarget;
      stable: string;
      version: string;
    }): Promise<{ name: string; created: boolean }> => {
      const { target } = input;
      const { apps } = deps.kubernetes();
      const stable = await readDeployment({ namespace: target.namespace, name: input.stable });
      const build = (replicas: number) =>
        versionDeployment({
          replicas,
          stable,
          app: target.deployment,
          container: target.container,
          image: target.image,
          version: input.version,
          rollout: Context.current().info.workflowExecution?.workflowId ?? 'unknown',
          minReadySeconds: target.minReadySeconds,
        });
      const desired = build(0);
      const name = desired.metadata?.name ?? '';
      try {
        await apps.createNamespacedDeployment({ namespace: target.namespace, body: desired });
        return { name, created: true };
      } catch (error) {
        if (apiStatus(error) !== 409)
          return kubernetesCall(`creating Deployment ${name}`, () => Promise.reject(error as Error));
      }
      // It exists: made by an earlier attempt of this activity, or left at 0 by an earlier rollout.
      await kubernetesCall(`updating Deployment ${name}`, () =>
        retryOnConflict(async () => {
          const existing = await apps.readNamespacedDeployment({ namespace: target.namespace, name });
          if (existing.metadata?.labels?.[batonLabels.app] !== target.deployment)
            throw ApplicationFailure.nonRetryable(
              `Deployment ${name} exists and was not made by Baton for ${target.deployment}; rename it or remove it`,
              kubernetesFailureTypes.preflight,
            );
          const body = build(existing.spec?.replicas ?? 0);
          body.metadata = { ...body.metadata, resourceVersion: existing.metadata?.resourceVersion };
          await apps.replaceNamespacedDeployment({ namespace: target.namespace, name, body });
        }),
      );
      return { name, created: false };
    },

    scaleDeployment: async (input: ScaleInput): Promise<void> => void (await scaleDeployment(input)),
    waitForDeployment,
    readReplicas,

    /**
     * One move of a rolling change in one trip: pods of `retire` beyond its replicas leave the Service and its
     * Deployment shrinks, then `grow` gets the room they made. Each retired pod's room is given once that pod is
     * terminating, so the pods not terminating never outnumber desired + maxSurge, and new pods are asked for as
     * old ones go rather than after the last of them. Each half states a desired state, so a retried attempt
     * redoes neither.
     */
    retireThenGrow: async (input: {
      retire: ScaleInput;
      /** `from`: the replicas `grow` has now; without it (rollouts scheduled before), all the room comes at once. */
      grow?: { name: string; replicas: number; from?: number };
    }): Promise<void> => {
      const retired = await scaleDeployment(input.retire);
      const { grow } = input;
      if (!grow) return;
      const { namespace } = input.retire;
      let asked = grow.from ?? 0;
      const growTo = async (replicas: number) => {
        if (replicas <= asked) return;
        asked = replicas;
        // Growing needs no read first: setting the replicas it already has changes nothing.
        await kubernetesCall(`scaling Deployment ${grow.name} to ${replicas}`, () =>
          deps
            .kubernetes()
            .apps.patchNamespacedDeployment(
              { namespace, name: grow.name, body: { spec: { replicas } } },
              mergePatch,
            ),
        );
      };
      // The ReplicaSet controller deletes the retired pods a moment after the scale-down, and its own rate limit
      // can make that moment a second on a busy cluster. Growing before they are terminating would run more pods
      // than replicas + maxSurge, which the Deployment controller's own rolling update does not.
      await untilTerminating(deps.kubernetes(), namespace, retired, async (stillRunning) => {
        if (grow.from !== undefined) await growTo(Math.max(grow.from, grow.replicas - stillRunning));
      });
      await growTo(grow.replicas);
    },

    /**
     * Waits until more pods of the Deployment are available (or all it asks for), then reads the other side of
     * the change: the two counts the next move is decided on, in one trip.
     */
    waitForMoreThenRead: async (
      input: DeploymentRef & { replicas: number; availableAbove: number; timeoutMs: number; other: string },
    ): Promise<{ waited: ReplicaCount; other: ReplicaCount }> => {
      const waited = await waitForDeployment({ ...input, available: true });
      const other = await readReplicas({ namespace: input.namespace, name: input.other });
      return { waited, other };
    },

    /**
     * A canary analysis on Kubernetes: for `windowMs`, every second, the canary Deployment must keep all its
     * replicas available and its pods must not restart. Fails for good, naming what went wrong; a retried attempt
     * resumes the window where the last one was.
     */
    watchCanaryPods: async (
      input: DeploymentRef & { replicas: number; windowMs: number },
    ): Promise<{ checks: number; restarts: number }> => {
      const ctx = Context.current();
      const clients = deps.kubernetes();
      const resumed = ctx.info.heartbeatDetails as { startedAt?: number; restarts?: number } | undefined;
      const startedAt = resumed?.startedAt ?? Date.now();
      const restartsOf = async (deployment: V1Deployment) => {
        const pods = await kubernetesCall(`listing the pods of ${input.name}`, () =>
          clients.core.listNamespacedPod({
            namespace: input.namespace,
            labelSelector: labelSelector(deployment.spec?.selector.matchLabels ?? {}),
          }),
        );
        return pods.items
          .flatMap((pod) => pod.status?.containerStatuses ?? [])
          .reduce((sum, container) => sum + container.restartCount, 0);
      };
      const fail = (problem: string) =>
        ApplicationFailure.nonRetryable(`analysis of ${input.name}: ${problem}`, 'AnalysisFailed');
      const first = await readDeployment(input);
      const restartsAtStart = resumed?.restarts ?? (await restartsOf(first));
      let checks = 0;
      for (;;) {
        const deployment = await readDeployment(input);
        checks++;
        const available = deployment.status?.availableReplicas ?? 0;
        if (available < input.replicas)
          throw fail(
            `${available} of ${input.replicas} pods available after ${Math.round((Date.now() - startedAt) / 1000)} s${await notAvailableReason(clients, deployment)}`,
          );
        const restarts = (await restartsOf(deployment)) - restartsAtStart;
        if (restarts > 0) throw fail(`its containers restarted ${restarts} times in the window`);
        ctx.heartbeat({ startedAt, restarts: restartsAtStart });
        if (Date.now() - startedAt >= input.windowMs) return { checks, restarts };
        await ctx.sleep(Math.min(1_000, Math.max(0, input.windowMs - (Date.now() - startedAt))));
      }
    },

    /**
     * One reading of the request counters of every serving pod (Ready, not terminating) of each Deployment, each at
     * its own address. A pod whose page can't be read or parsed is listed with the reason instead: the analysis
     * decides what that means.
     */
    samplePodMetrics: async (input: {
      namespace: string;
      deployments: readonly string[];
      container: string;
      metrics: PodMetrics;
    }): Promise<PodMetricsSample> => {
      const reader = deps.metrics;
      if (!reader) throw new Error('samplePodMetrics needs a metrics reader among the activity dependencies');
      const clients = deps.kubernetes();
      const ctx = Context.current();
      const sample: PodMetricsSample = { pods: {}, counters: {}, unreadable: {} };
      for (const name of input.deployments) {
        const deployment = await readDeployment({ namespace: input.namespace, name });
        const port = input.metrics.port ?? containerPort(deployment, input.container);
        if (port === undefined)
          throw ApplicationFailure.nonRetryable(
            `target.metrics: container ${input.container} of Deployment ${name} declares no containerPort; give target.metrics.port`,
            kubernetesFailureTypes.preflight,
          );
        const pods = await servingPods(clients, deployment);
        sample.pods[name] = pods.map((pod) => pod.metadata?.name ?? '');
        const limit = pLimit(podReadConcurrency);
        await Promise.all(
          pods.map((pod) =>
            limit(async () => {
              ctx.heartbeat();
              const podName = pod.metadata?.name ?? '';
              const url = `http://${pod.status?.podIP}:${port}${input.metrics.path}`;
              try {
                const text = await reader.read(url, 5_000, ctx.cancellationSignal);
                sample.counters[podName] = podCounters(text, input.metrics);
              } catch (error) {
                sample.unreadable[podName] = `${url}: ${(error as Error).message}`;
              }
            }),
          ),
        );
      }
      return sample;
    },

    /** The Deployment is gone (with its ReplicaSets and pods); already gone is fine. */
    deleteDeployment: (input: DeploymentRef): Promise<void> => deleteDeployment(input),

    /** Deployments Baton made for this app that no longer serve (0 replicas), except those to keep, are gone. */
    pruneVersions: async (input: {
      namespace: string;
      app: string;
      keep: readonly string[];
    }): Promise<string[]> => {
      const { apps } = deps.kubernetes();
      const list = await kubernetesCall(`listing Deployments of ${input.app}`, () =>
        apps.listNamespacedDeployment({
          namespace: input.namespace,
          labelSelector: labelSelector({ [batonLabels.managedBy]: 'baton', [batonLabels.app]: input.app }),
        }),
      );
      const pruned: string[] = [];
      for (const deployment of list.items) {
        const name = deployment.metadata?.name ?? '';
        if (input.keep.includes(name) || (deployment.spec?.replicas ?? 0) > 0) continue;
        await deleteDeployment({ namespace: input.namespace, name });
        pruned.push(name);
      }
      return pruned;
    },

    /**
     * Native mode: the Deployment's container runs the new image, with the spec's fence posts as its rolling
     * update strategy; its own controller then rolls the pods. Already so: nothing changes.
     */
    setDeploymentImage: async (input: {
      target: KubernetesTarget;
      version: string;
      maxSurge: number | string;
      maxUnavailable: number | string;
    }): Promise<void> => {
      const { target } = input;
      const { apps } = deps.kubernetes();
      const image = `${target.image}:${input.version}`;
      await kubernetesCall(`setting the image of Deployment ${target.deployment}`, () =>
        retryOnConflict(async () => {
          const deployment = await apps.readNamespacedDeployment({
            namespace: target.namespace,
            name: target.deployment,
          });
          const spec = deployment.spec;
          const container = spec?.template.spec?.containers.find((c) => c.name === target.container);
          if (!spec || !container)
            throw ApplicationFailure.nonRetryable(
              `target.container: Deployment ${target.deployment} has no container "${target.container}"`,
              kubernetesFailureTypes.preflight,
            );
          const strategy = { maxSurge: input.maxSurge, maxUnavailable: input.maxUnavailable };
          const current = spec.strategy?.rollingUpdate;
          if (
            container.image === image &&
            current?.maxSurge === strategy.maxSurge &&
            current.maxUnavailable === strategy.maxUnavailable
          )
            return;
          container.image = image;
          spec.strategy = { type: 'RollingUpdate', rollingUpdate: strategy };
          spec.minReadySeconds = target.minReadySeconds;
          deployment.metadata = {
            ...deployment.metadata,
            annotations: {
              ...deployment.metadata?.annotations,
              'kubernetes.io/change-cause': `baton: ${target.container} to ${input.version}`,
              [batonAnnotations.rollout]: Context.current().info.workflowExecution?.workflowId ?? 'unknown',
            },
          };
          await apps.replaceNamespacedDeployment({
            namespace: target.namespace,
            name: target.deployment,
            body: deployment,
          });
        }),
      );
    },

    /** Native mode: waits until every replica runs the current template and is available, old pods gone. */
    waitForRollout: async (input: DeploymentRef & { timeoutMs: number }): Promise<ReplicaCount> => {
      const latest = await waitUntilSettled(deps.kubernetes(), input, input.timeoutMs, (d) => {
        const want = d.spec?.replicas ?? 0;
        return (
          (d.status?.updatedReplicas ?? 0) === want &&
          (d.status?.replicas ?? 0) === want &&
          (d.status?.availableReplicas ?? 0) >= want
        );
      });
      return replicaCount(latest);
    },

    /** Native mode: a paused Deployment's controller starts no new step of its rollout until resumed. */
    setDeploymentPaused: async (input: DeploymentRef & { paused: boolean }): Promise<void> => {
      await kubernetesCall(`${input.paused ? 'pausing' : 'resuming'} Deployment ${input.name}`, () =>
        deps
          .kubernetes()
          .apps.patchNamespacedDeployment(
            { namespace: input.namespace, name: input.name, body: { spec: { paused: input.paused } } },
            mergePatch,
          ),
      );
    },

    /**
     * Native mode: the Deployment's template is again the one of its newest ReplicaSet that ran `version`, as
     * `kubectl rollout undo` does; resumed if paused.
     */
    undoDeployment: async (input: DeploymentRef & { container: string; version: string }): Promise<void> => {
      const { apps } = deps.kubernetes();
      await kubernetesCall(`undoing Deployment ${input.name} to ${input.version}`, () =>
        retryOnConflict(async () => {
          const deployment = await apps.readNamespacedDeployment(input);
          const owned = await apps.listNamespacedReplicaSet({
            namespace: input.namespace,
            labelSelector: labelSelector(deployment.spec?.selector.matchLabels ?? {}),
          });
          const revision = (rs: V1ReplicaSet) =>
            Number(rs.metadata?.annotations?.['deployment.kubernetes.io/revision'] ?? 0);
          const previous = owned.items
            .filter((rs) => rs.metadata?.ownerReferences?.some((o) => o.uid === deployment.metadata?.uid))
            .filter((rs) => {
              const image = rs.spec?.template?.spec?.containers.find(
                (c) => c.name === input.container,
              )?.image;
              return image !== undefined && imageTag(image) === input.version;
            })
            .sort((a, b) => revision(b) - revision(a))[0];
          const template = previous?.spec?.template;
          if (!template || !deployment.spec)
            throw ApplicationFailure.nonRetryable(
              `no ReplicaSet of ${input.name} ran ${input.version}: nothing to undo to`,
              kubernetesFailureTypes.rejected,
            );
          const labels = { ...template.metadata?.labels };
          delete labels['pod-template-hash'];
          deployment.spec.template = { ...template, metadata: { ...template.metadata, labels } };
          deployment.spec.paused = false;
          await apps.replaceNamespacedDeployment({ ...input, body: deployment });
        }),
      );
    },

    /**
     * The pod-template-hash of the Deployment's current ReplicaSet: a label only its current pods carry, which a
     * Service can select on to pin traffic to exactly that version (blue/green).
     */
    templateHash: async (input: DeploymentRef): Promise<string> => {
      const { apps } = deps.kubernetes();
      const deployment = await readDeployment(input);
      const revision = deployment.metadata?.annotations?.['deployment.kubernetes.io/revision'];
      const sets = await kubernetesCall(`listing ReplicaSets of ${input.name}`, () =>
        apps.listNamespacedReplicaSet({
          namespace: input.namespace,
          labelSelector: labelSelector(deployment.spec?.selector.matchLabels ?? {}),
        }),
      );
      const current = sets.items.find(
        (rs) =>
          rs.metadata?.ownerReferences?.some((o) => o.uid === deployment.metadata?.uid) &&
          rs.metadata.annotations?.['deployment.kubernetes.io/revision'] === revision,
      );
      const hash = current?.metadata?.labels?.['pod-template-hash'];
      // Retryable: a Deployment created a moment ago may not have its ReplicaSet yet.
      if (!hash) throw ApplicationFailure.retryable(`Deployment ${input.name} has no current ReplicaSet yet`);
      return hash;
    },

    /**
     * Checks each available pod of the Deployment at its own address (`http://<pod IP>:<container's first port>`)
     * until it passes `verify.passes` times in a row reporting `version`. A Deployment running another version
     * (the old one, scaled back up by a rollback) is left alone.
     */
    verifyPods: async (input: {
      namespace: string;
      name: string;
      container: string;
      version: string;
      verify: HttpVerification;
    }): Promise<{ verified: number }> => {
      const clients = deps.kubernetes();
      const deployment = await readDeployment(input);
      if (deploymentVersion(deployment, input.container) !== input.version) return { verified: 0 };
      const port = containerPort(deployment, input.container);
      if (port === undefined)
        throw ApplicationFailure.nonRetryable(
          `verify.http: container ${input.container} of Deployment ${input.name} declares no containerPort to check`,
          kubernetesFailureTypes.preflight,
        );
      const verifier = deps.verifier;
      if (!verifier) throw new Error('verifyPods needs a verifier among the activity dependencies');
      const pods = await servingPods(clients, deployment);
      const ctx = Context.current();
      await Promise.all(
        pods.map((pod) =>
          verifyAt(
            ctx,
            verifier,
            `pod ${pod.metadata?.name}`,
            `http://${pod.status?.podIP}:${port}${input.verify.path}`,
            input.verify,
            input.version,
          ),
        ),
      );
      return { verified: pods.length };
    },

    /** The Service selects exactly these labels (blue/green's switch of all traffic at once). */
    setServiceSelector: async (input: {
      namespace: string;
      service: string;
      selector: Record<string, string>;
    }): Promise<void> => {
      const { core } = deps.kubernetes();
      await kubernetesCall(`switching Service ${input.service}`, () =>
        retryOnConflict(async () => {
          const service = await core.readNamespacedService({
            namespace: input.namespace,
            name: input.service,
          });
          service.spec = { ...service.spec, selector: input.selector };
          await core.replaceNamespacedService({
            namespace: input.namespace,
            name: input.service,
            body: service,
          });
        }),
      );
    },
  };
}

/**
 * Pod patches sent at once when a step retires many pods: a step of a 100-replica Deployment at maxSurge 25% in one
 * round; kube-apiserver's default in-flight limit for writes is 200.
 */
const podPatchConcurrency = 25;
/** Metrics pages read at once: a Deployment of hundreds of pods is read a few pods at a time. */
const podReadConcurrency = 10;

/**
 * Marks the pods of the Deployment beyond `keep` to go first and takes them out of the Service. Retrying picks the
 * pods an earlier attempt marked, so a crash between marking and scaling never takes away more than asked.
 */
async function retirePods(
  clients: KubernetesClients,
  deployment: V1Deployment,
  keep: number,
  serviceName: string | undefined,
  detachDelayMs: number,
): Promise<string[]> {
  const namespace = deployment.metadata?.namespace ?? 'default';
  const name = deployment.metadata?.name ?? '';
  const selector = deployment.spec?.selector.matchLabels ?? {};
  // Three reads at once: a step waits on them before a pod leaves.
  const [pods, owners, service] = await Promise.all([
    kubernetesCall(`listing pods of ${name}`, () =>
      clients.core.listNamespacedPod({ namespace, labelSelector: labelSelector(selector) }),
    ),
    ownReplicaSets(clients, deployment),
    serviceName === undefined
      ? undefined
      : kubernetesCall(`reading Service ${serviceName}`, () =>
          clients.core.readNamespacedService({ namespace, name: serviceName }),
        ),
  ]);
  const chosen = podsToRetire(pods.items, keep, owners);
  let detachKeys: string[] = [];
  if (service !== undefined) {
    // Labels the Service selects on but the Deployment does not: removing them leaves the pod owned by its
    // ReplicaSet and out of the Service. A Service that selects only on the Deployment's own labels can't be left
    // this way; those pods leave its endpoints when they terminate, as Kubernetes does by default.
    // pod-template-hash is in every ReplicaSet's selector: removing it would orphan the pod.
    detachKeys = Object.keys(service.spec?.selector ?? {}).filter(
      (key) => !(key in selector) && key !== 'pod-template-hash',
    );
  }
  const labels = Object.fromEntries(detachKeys.map((key) => [key, null]));
  const annotations: Record<string, string> = { [podDeletionCost]: retiringPodCost };
  if (detachKeys.length > 0 && serviceName !== undefined)
    annotations[batonAnnotations.detachedFrom] = serviceName;
  // A step of a large Deployment retires tens of pods: a few patches at a time, not one after another.
  // Pods marked before are left as they are: an earlier step's may be deleted by now.
  const toMark = chosen.filter((pod) => !isRetiring(pod));
  for (let i = 0; i < toMark.length; i += podPatchConcurrency) {
    Context.current().heartbeat();
    await Promise.all(
      toMark
        .slice(i, i + podPatchConcurrency)
        .map((pod) =>
          kubernetesCall(`marking pod ${pod.metadata?.name} to go`, () =>
            clients.core.patchNamespacedPod(
              { namespace, name: pod.metadata?.name ?? '', body: { metadata: { labels, annotations } } },
              mergePatch,
            ),
          ),
        ),
    );
  }
  if (serviceName !== undefined && detachKeys.length > 0 && chosen.length > 0) {
    await waitOutOfEndpoints(clients, namespace, serviceName, chosen);
    // Out of the EndpointSlices is not yet out of every proxy's rules: they program the change a moment later.
    for (let left = detachDelayMs; left > 0; left -= 5_000) {
      Context.current().heartbeat();
      await Context.current().sleep(Math.min(left, 5_000));
    }
  }
  return chosen.map((pod) => pod.metadata?.name ?? '');
}

/**
 * Waits until each of the pods is terminating or gone, reading each one every 10 ms (a read of one pod costs less
 * than a list of the Deployment's), and tells `progress` how many are still running after each round. Past 5 s it
 * goes on with a warning: the ReplicaSet controller may have chosen other pods than those marked, and a list would
 * then be the only way to tell.
 */
async function untilTerminating(
  clients: KubernetesClients,
  namespace: string,
  pods: readonly string[],
  progress: (stillRunning: number) => Promise<void>,
) {
  const deadline = Date.now() + 5_000;
  for (let left = [...pods]; left.length > 0; ) {
    const still = await Promise.all(
      left.map(async (name) => {
        try {
          const pod = await clients.core.readNamespacedPod({ namespace, name });
          return isTerminating(pod) ? undefined : name;
        } catch (error) {
          if (apiStatus(error) === 404) return undefined;
          return kubernetesCall(`reading pod ${name}`, () => Promise.reject(error as Error));
        }
      }),
    );
    left = still.filter((name): name is string => name !== undefined);
    await progress(left.length);
    if (left.length === 0) return;
    if (Date.now() > deadline) {
      log.warn('retired pods are not terminating yet; growing all the same', { pods: left });
      return;
    }
    await Context.current().sleep(10);
  }
}

/** The uids of the ReplicaSets the Deployment owns: its pods are theirs, whatever else its selector matches. */
async function ownReplicaSets(clients: KubernetesClients, deployment: V1Deployment): Promise<Set<string>> {
  const name = deployment.metadata?.name ?? '';
  const sets = await kubernetesCall(`listing ReplicaSets of ${name}`, () =>
    clients.apps.listNamespacedReplicaSet({
      namespace: deployment.metadata?.namespace ?? 'default',
      labelSelector: labelSelector(deployment.spec?.selector.matchLabels ?? {}),
    }),
  );
  return new Set(
    sets.items
      .filter((rs) => rs.metadata?.ownerReferences?.some((o) => o.uid === deployment.metadata?.uid))
      .map((rs) => rs.metadata?.uid ?? ''),
  );
}

/** The Deployment's own pods that take requests: Ready, not terminating. */
async function servingPods(clients: KubernetesClients, deployment: V1Deployment): Promise<V1Pod[]> {
  return (await ownPods(clients, deployment)).filter((pod) => isReady(pod) && !isTerminating(pod));
}

/** The first port the Deployment's container declares, where its pods are checked and read. */
function containerPort(deployment: V1Deployment, container: string): number | undefined {
  return deployment.spec?.template.spec?.containers.find((c) => c.name === container)?.ports?.[0]
    ?.containerPort;
}

/** The Deployment's own pods. */
async function ownPods(clients: KubernetesClients, deployment: V1Deployment): Promise<V1Pod[]> {
  const name = deployment.metadata?.name ?? '';
  const pods = await kubernetesCall(`listing pods of ${name}`, () =>
    clients.core.listNamespacedPod({
      namespace: deployment.metadata?.namespace ?? 'default',
      labelSelector: labelSelector(deployment.spec?.selector.matchLabels ?? {}),
    }),
  );
  const owners = await ownReplicaSets(clients, deployment);
  return pods.items.filter((pod) => pod.metadata?.ownerReferences?.some((o) => owners.has(o.uid)) ?? false);
}

/** Waits, with a watch, (up to 30 s) until none of the pods is a ready endpoint of the Service. */
async function waitOutOfEndpoints(
  clients: KubernetesClients,
  namespace: string,
  service: string,
  pods: readonly V1Pod[],
): Promise<void> {
  const ctx = Context.current();
  const names = new Set(pods.map((p) => p.metadata?.name));
  const labelSelector = `kubernetes.io/service-name=${service}`;
  const listed = (slices: Iterable<V1EndpointSlice>) =>
    [...slices]
      // A slice with no endpoint at all comes back with `endpoints: null`.
      .flatMap((slice) => slice.endpoints ?? [])
      .filter((e) => names.has(e.targetRef?.name) && e.conditions?.ready !== false)
      .map((e) => e.targetRef?.name);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const list = await kubernetesCall(`reading endpoints of Service ${service}`, () =>
      clients.discovery.listNamespacedEndpointSlice({ namespace, labelSelector }),
    );
    const slices = new Map(list.items.map((slice) => [slice.metadata?.name, slice]));
    if (listed(slices.values()).length === 0) return;
    ctx.heartbeat();
    if (Date.now() > deadline) {
      log.warn('pods still listed as Service endpoints; scaling down anyway', {
        service,
        pods: listed(slices.values()),
      });
      return;
    }
    let out = false;
    await watchUntil<V1EndpointSlice>(
      clients,
      ctx,
      `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`,
      { labelSelector, resourceVersion: list.metadata?.resourceVersion },
      (type, slice) => {
        if (type === 'DELETED') slices.delete(slice.metadata?.name);
        else if (type === 'ADDED' || type === 'MODIFIED') slices.set(slice.metadata?.name, slice);
        out = listed(slices.values()).length === 0;
        return out;
      },
      Math.max(0, Math.min(heartbeatEveryMs, deadline - Date.now())),
    );
    if (out) return;
  }
}

/**
 * Waits, with a watch, until the Deployment has been seen by its controller (observedGeneration) and `settled`
 * holds. Heartbeats with the last progress, so a retried attempt keeps the clock; fails once no pod has become
 * updated or available for `timeoutMs` (Kubernetes' progress deadline, measured here), naming the pods not Ready.
 */
async function waitUntilSettled(
  clients: KubernetesClients,
  ref: DeploymentRef,
  timeoutMs: number,
  settled: (d: V1Deployment) => boolean,
): Promise<V1Deployment> {
  const ctx = Context.current();
  const done = (d: V1Deployment) =>
    (d.status?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0) && settled(d);
  const progressOf = (d: V1Deployment) =>
    `${d.status?.updatedReplicas ?? 0}/${d.status?.availableReplicas ?? 0}/${d.status?.replicas ?? 0}`;
  const resumed = ctx.info.heartbeatDetails as { progress?: string; progressAt?: number } | undefined;
  let progress = resumed?.progress;
  let progressAt = resumed?.progressAt ?? Date.now();
  for (;;) {
    const list = await kubernetesCall(`reading Deployment ${ref.name}`, () =>
      clients.apps.listNamespacedDeployment({
        namespace: ref.namespace,
        fieldSelector: `metadata.name=${ref.name}`,
      }),
    );
    let latest = list.items[0];
    if (!latest)
      throw ApplicationFailure.nonRetryable(
        `Deployment ${ref.namespace}/${ref.name} is gone`,
        kubernetesFailureTypes.rejected,
      );
    if (!done(latest))
      latest = await watchDeployment(clients, ref, list.metadata?.resourceVersion, done, latest, ctx);
    if (progressOf(latest) !== progress) {
      progress = progressOf(latest);
      progressAt = Date.now();
    }
    ctx.heartbeat({ progress, progressAt, ...replicaCount(latest) });
    if (done(latest)) return latest;
    if (Date.now() - progressAt > timeoutMs) {
      const problem = await notAvailableReason(clients, latest);
      throw ApplicationFailure.nonRetryable(
        `${ref.name}: ${latest.status?.availableReplicas ?? 0} of ${latest.spec?.replicas ?? 0} pods available, none more for ${Math.round(timeoutMs / 1000)} s${problem}`,
        kubernetesFailureTypes.notAvailable,
      );
    }
  }
}

/**
 * Watches one Deployment from `resourceVersion` until `done` holds, the watch ends, or a heartbeat is due; returns
 * the latest object seen. The caller lists again after each return, so a dropped watch only costs a re-list.
 */
async function watchDeployment(
  clients: KubernetesClients,
  ref: DeploymentRef,
  resourceVersion: string | undefined,
  done: (d: V1Deployment) => boolean,
  initial: V1Deployment,
  ctx: Context,
): Promise<V1Deployment> {
  let latest = initial;
  await watchUntil<V1Deployment>(
    clients,
    ctx,
    `/apis/apps/v1/namespaces/${ref.namespace}/deployments`,
    { fieldSelector: `metadata.name=${ref.name}`, resourceVersion },
    (type, object) => {
      if (type !== 'ADDED' && type !== 'MODIFIED') return false;
      latest = object;
      return done(object);
    },
  );
  return latest;
}

/**
 * Watches a list from `resourceVersion` until `seen` says so, the watch ends, `forMs` passes (a heartbeat is due
 * by then) or the activity is cancelled (then rejects).
 */
async function watchUntil<T>(
  clients: KubernetesClients,
  ctx: Context,
  path: string,
  query: { fieldSelector?: string; labelSelector?: string; resourceVersion?: string },
  seen: (type: string, object: T) => boolean,
  forMs = heartbeatEveryMs,
): Promise<void> {
  let controller: AbortController | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(resolve, forMs);
      ctx.cancelled.catch(reject);
      new Watch(clients.config)
        .watch(
          path,
          { ...query, allowWatchBookmarks: true },
          (type, object: T) => {
            if (seen(type, object)) resolve();
          },
          () => resolve(),
        )
        .then((c) => (controller = c), reject);
    });
  } finally {
    clearTimeout(timer);
    controller?.abort();
  }
}

/** Names the pods that hold a Deployment back, with the reason Kubernetes gives. */
async function notAvailableReason(clients: KubernetesClients, deployment: V1Deployment): Promise<string> {
  const selector = deployment.spec?.selector.matchLabels ?? {};
  const pods = await clients.core
    .listNamespacedPod({
      namespace: deployment.metadata?.namespace ?? 'default',
      labelSelector: labelSelector(selector),
    })
    .catch(() => undefined);
  const notReady = (pods?.items ?? []).filter((p) => !isTerminating(p) && !isReady(p));
  if (notReady.length === 0) return '';
  const described = notReady.slice(0, 5).map((p) => {
    const ready = p.status?.conditions?.find((c) => c.type === 'Ready');
    return `${p.metadata?.name} ${p.status?.phase ?? 'Unknown'}${ready?.reason ? ` (${ready.reason})` : ''}`;
  });
  return `; not Ready: ${described.join(', ')}${notReady.length > 5 ? `, and ${notReady.length - 5} more` : ''}`;
}

export type KubernetesActivities = ReturnType<typeof createKubernetesActivities>;
