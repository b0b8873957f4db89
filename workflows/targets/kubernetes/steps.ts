import { proxyActivities } from '@temporalio/workflow';
import type {
  KubernetesActivities,
  KubernetesPreflight,
  PodMetricsSample,
  ReplicaCount,
} from '../../../activities/kubernetes/kubernetes-activities';
import type { FleetActivities } from '../../../activities/fleet-activities';
import type { HookCommand, KubernetesTarget, PodMetrics, RolloutSpec } from '../../../spec/rollout';
import type { RolloutControl } from '../../control';
import { kubernetesApiProfile, kubernetesWaitProfile, preflightProfile, verifyProfile } from '../../profiles';

export type KubernetesRolloutSpec = RolloutSpec & { target: KubernetesTarget };

const acts = proxyActivities<KubernetesActivities>(kubernetesApiProfile);
const hooks = proxyActivities<Pick<FleetActivities, 'runHook'>>({ startToCloseTimeout: '10m' });

/**
 * The steps of a Kubernetes rollout, each one activity with a summary for the Temporal UI ("scale web-v2 to
 * 3", "wait for 3 available pods of web-v2").
 */
export class KubernetesSteps {
  private readonly namespace: string;

  constructor(
    private readonly spec: KubernetesRolloutSpec,
    private readonly control: RolloutControl,
  ) {
    this.namespace = spec.target.namespace;
  }

  preflight(): Promise<KubernetesPreflight> {
    return acts.preflightKubernetes.executeWithOptions(
      { ...preflightProfile, summary: `preflight ${this.spec.target.name}` },
      [{ target: this.spec.target, version: this.spec.version }],
    );
  }

  ensureVersionDeployment(stable: string): Promise<{ name: string; created: boolean }> {
    return acts.ensureVersionDeployment.executeWithOptions(
      { ...kubernetesApiProfile, summary: `create Deployment for ${this.spec.version}` },
      [{ target: this.spec.target, stable, version: this.spec.version }],
    );
  }

  /** Scales the Deployment and waits until it has that many pods (all available when scaling up). */
  async scale(name: string, replicas: number, direction: 'up' | 'down'): Promise<ReplicaCount> {
    // Not cut short by an abort: a scale-down takes pods out of the Service before it deletes them, and stopped
    // in between it would leave them out of it yet counted available. Its wait is bounded (30 s, then detachDelay).
    await acts.scaleDeployment.executeWithOptions(
      { ...kubernetesApiProfile, summary: `scale ${name} ${direction} to ${replicas}` },
      [
        {
          namespace: this.namespace,
          name,
          replicas,
          service: this.spec.target.service,
          detachDelayMs: this.spec.target.detachDelay,
        },
      ],
    );
    const count = await this.waitFor(name, replicas, direction === 'up');
    if (direction === 'up') await this.verifyPods(name);
    return count;
  }

  /**
   * verify.http, when the spec has it, on each available pod of `name` that runs the rollout's version. Rollouts
   * recorded before it had verify.http in their input by default, and made no such call.
   */
  private async verifyPods(name: string): Promise<void> {
    const http = this.spec.verify?.http;
    if (!http || !this.control.patches.has('kubernetes-verify-pods')) return;
    await this.control.cancelOnAbort(() =>
      acts.verifyPods.executeWithOptions(
        { ...verifyProfile(http), summary: `verify pods of ${name} run ${this.spec.version}` },
        [
          {
            namespace: this.namespace,
            name,
            container: this.spec.target.container,
            version: this.spec.version,
            verify: http,
          },
        ],
      ),
    );
  }

  waitFor(name: string, replicas: number, available: boolean): Promise<ReplicaCount> {
    return this.control.cancelOnAbort(() =>
      acts.waitForDeployment.executeWithOptions(
        {
          ...kubernetesWaitProfile(this.spec.target.readyTimeout),
          summary: available
            ? `wait for ${replicas} available pods of ${name}`
            : `wait for ${name} to have ${replicas} pods`,
        },
        [{ namespace: this.namespace, name, replicas, available, timeoutMs: this.spec.target.readyTimeout }],
      ),
    );
  }

  /**
   * Takes pods of `name` out of the Service and scales it down to `replicas`, without waiting for them to stop:
   * the Deployment controller counts a Deployment by its replicas, not its pods, when it makes room for new ones.
   */
  retire(name: string, replicas: number): Promise<void> {
    return acts.scaleDeployment.executeWithOptions(
      { ...kubernetesApiProfile, summary: `scale ${name} down to ${replicas}` },
      [
        {
          namespace: this.namespace,
          name,
          replicas,
          service: this.spec.target.service,
          detachDelayMs: this.spec.target.detachDelay,
        },
      ],
    );
  }

  /** Sets the Deployment's replicas without waiting for its pods (they are waited for as they come). */
  resize(name: string, replicas: number): Promise<void> {
    return acts.scaleDeployment.executeWithOptions(
      { ...kubernetesApiProfile, summary: `scale ${name} up to ${replicas}` },
      [{ namespace: this.namespace, name, replicas }],
    );
  }

  /**
   * retire, then resize `grow` into the room that made, as one activity: a rolling step costs one trip to the
   * worker, not two.
   */
  retireThenGrow(
    name: string,
    replicas: number,
    grow?: { name: string; replicas: number; from: number },
  ): Promise<void> {
    const summary = `scale ${name} down to ${replicas}${grow ? `, then ${grow.name} up to ${grow.replicas}` : ''}`;
    return acts.retireThenGrow.executeWithOptions({ ...kubernetesApiProfile, summary }, [
      {
        retire: {
          namespace: this.namespace,
          name,
          replicas,
          service: this.spec.target.service,
          detachDelayMs: this.spec.target.detachDelay,
        },
        grow,
      },
    ]);
  }

  /** waitForMore, then a read of `other`, in one activity. */
  waitForMoreThenRead(
    name: string,
    replicas: number,
    available: number,
    other: string,
  ): Promise<{ waited: ReplicaCount; other: ReplicaCount }> {
    return this.control.cancelOnAbort(() =>
      acts.waitForMoreThenRead.executeWithOptions(
        {
          ...kubernetesWaitProfile(this.spec.target.readyTimeout),
          summary: `wait for more than ${available} of ${replicas} pods of ${name} to be available, then read ${other}`,
        },
        [
          {
            namespace: this.namespace,
            name,
            replicas,
            availableAbove: available,
            timeoutMs: this.spec.target.readyTimeout,
            other,
          },
        ],
      ),
    );
  }

  /** Waits until more than `available` pods of `name` are available, or all `replicas` are. */
  waitForMore(name: string, replicas: number, available: number): Promise<ReplicaCount> {
    return this.control.cancelOnAbort(() =>
      acts.waitForDeployment.executeWithOptions(
        {
          ...kubernetesWaitProfile(this.spec.target.readyTimeout),
          summary: `wait for more than ${available} of ${replicas} pods of ${name} to be available`,
        },
        [
          {
            namespace: this.namespace,
            name,
            replicas,
            available: true,
            availableAbove: available,
            timeoutMs: this.spec.target.readyTimeout,
          },
        ],
      ),
    );
  }

  /** Watches the canary's pods for a window: all available, none restarting. */
  watchCanary(name: string, replicas: number, windowMs: number, summary: string) {
    return this.control.cancelOnAbort(() =>
      acts.watchCanaryPods.executeWithOptions(
        { ...kubernetesApiProfile, startToCloseTimeout: windowMs + 120_000, summary },
        [{ namespace: this.namespace, name, replicas, windowMs }],
      ),
    );
  }

  /** One reading of the request counters of the serving pods of these Deployments (target.metrics). */
  samplePods(
    metrics: PodMetrics,
    deployments: readonly string[],
    summary: string,
  ): Promise<PodMetricsSample> {
    return acts.samplePodMetrics.executeWithOptions({ ...kubernetesApiProfile, summary }, [
      { namespace: this.namespace, deployments, container: this.spec.target.container, metrics },
    ]);
  }

  read(name: string): Promise<ReplicaCount> {
    return acts.readReplicas.executeWithOptions({ ...kubernetesApiProfile, summary: `read ${name}` }, [
      { namespace: this.namespace, name },
    ]);
  }

  delete(name: string): Promise<void> {
    return acts.deleteDeployment.executeWithOptions({ ...kubernetesApiProfile, summary: `delete ${name}` }, [
      { namespace: this.namespace, name },
    ]);
  }

  /** Native mode: the one Deployment gets the new image and the spec's fence posts; its controller rolls it. */
  setImage(maxSurge: number | string, maxUnavailable: number | string): Promise<void> {
    return acts.setDeploymentImage.executeWithOptions(
      { ...kubernetesApiProfile, summary: `set ${this.spec.target.deployment} to ${this.spec.version}` },
      [{ target: this.spec.target, version: this.spec.version, maxSurge, maxUnavailable }],
    );
  }

  waitForRollout(): Promise<ReplicaCount> {
    return acts.waitForRollout.executeWithOptions(
      {
        ...kubernetesWaitProfile(this.spec.target.readyTimeout),
        summary: `follow the rollout of ${this.spec.target.deployment}`,
      },
      [
        {
          namespace: this.namespace,
          name: this.spec.target.deployment,
          timeoutMs: this.spec.target.readyTimeout,
        },
      ],
    );
  }

  setPaused(paused: boolean): Promise<void> {
    return acts.setDeploymentPaused.executeWithOptions(
      { ...kubernetesApiProfile, summary: `${paused ? 'pause' : 'resume'} ${this.spec.target.deployment}` },
      [{ namespace: this.namespace, name: this.spec.target.deployment, paused }],
    );
  }

  undo(version: string): Promise<void> {
    return acts.undoDeployment.executeWithOptions(
      { ...kubernetesApiProfile, summary: `undo ${this.spec.target.deployment} to ${version}` },
      [
        {
          namespace: this.namespace,
          name: this.spec.target.deployment,
          container: this.spec.target.container,
          version,
        },
      ],
    );
  }

  templateHash(name: string): Promise<string> {
    return acts.templateHash.executeWithOptions(
      { ...kubernetesApiProfile, summary: `read the template hash of ${name}` },
      [{ namespace: this.namespace, name }],
    );
  }

  setServiceSelector(service: string, selector: Record<string, string>, summary: string): Promise<void> {
    return acts.setServiceSelector.executeWithOptions({ ...kubernetesApiProfile, summary }, [
      { namespace: this.namespace, service, selector },
    ]);
  }

  hook(hook: HookCommand): Promise<void> {
    return hooks.runHook.executeWithOptions(
      {
        startToCloseTimeout: hook.timeout + 10_000,
        retry: { maximumAttempts: 1 },
        summary: `pre-step ${hook.argv[0] ?? ''}`,
      },
      [{ hook, target: this.spec.target.name, version: this.spec.version }],
    );
  }

  prune(keep: readonly string[]): Promise<string[]> {
    return acts.pruneVersions.executeWithOptions(
      { ...kubernetesApiProfile, summary: `prune retired Deployments of ${this.spec.target.deployment}` },
      [{ namespace: this.namespace, app: this.spec.target.deployment, keep }],
    );
  }
}
