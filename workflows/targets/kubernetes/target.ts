import type { KubernetesPreflight } from '../../../activities/kubernetes/kubernetes-activities';
import type { CanaryAnalysis, HookCommand } from '../../../spec/rollout';
import type { RolloutControl } from '../../control';
import type { Lifecycle } from '../../lifecycle';
import type { DeploymentStatus } from '../../messages';
import type { RolloutState } from '../../state';
import { judgeCanary } from '../../plan';
import { failureMessage } from '../../stop';
import type { Observation, RolloutTarget, TargetBaseline } from '../target';
import type { KubernetesRolloutSpec } from './steps';
import { KubernetesSteps } from './steps';

/**
 * A Deployment behind a Service as a rollout target. The new version gets a Deployment of its own beside the old
 * one (Baton's side-by-side mode), and both are behind the Service: capacity moves by scaling one up and the
 * other down, and the replica ratio is the traffic share. A switch at once (blue/green) pins the Service to one
 * Deployment's pod-template-hash, as Argo Rollouts does.
 */
export class KubernetesRolloutTarget implements RolloutTarget {
  readonly kind = 'kubernetes';
  readonly surges = true;
  readonly steps: KubernetesSteps;
  private found?: KubernetesPreflight;
  private next?: string;
  private nextReplicas = 0;
  private stableReplicas = 0;
  /** Set while the Service is pinned to the old pods: their hash, and the Service's own selector. */
  private pinned?: { stableHash: string; selector: Record<string, string> };

  constructor(
    private readonly spec: KubernetesRolloutSpec,
    private readonly state: RolloutState,
    private readonly control: RolloutControl,
    private readonly lifecycle: Lifecycle,
  ) {
    this.steps = new KubernetesSteps(spec, control);
  }

  get specTarget(): KubernetesRolloutSpec['target'] {
    return this.spec.target;
  }

  get trafficName(): string {
    return this.spec.target.service ?? this.spec.target.name;
  }

  /** What the preflight found: the Deployment that serves, its version and replicas. */
  get stable(): KubernetesPreflight {
    if (!this.found) throw new Error('the Kubernetes target is used before its preflight');
    return this.found;
  }

  async preflight(): Promise<TargetBaseline> {
    const found = await this.lifecycle.preflight(() => this.steps.preflight());
    this.found = found;
    this.stableReplicas = found.replicas;
    this.state.setFromVersion(found.fromVersion);
    this.show('stable', found.replicas, found.replicas);
    if (this.spec.strategy.type === 'blue-green' && this.spec.target.service === undefined)
      this.lifecycle.reject('target.service: blue-green switches a Service; name it in the spec');
    return {
      size: found.replicas,
      toMove: found.fromVersion === this.spec.version ? 0 : found.replicas,
      label: found.stable,
    };
  }

  /** New pods come up and are available, then as many old ones leave (the Service first). */
  async replace(units: number): Promise<void> {
    await this.bringIn(units);
    await this.control.checkpoint();
    await this.takeOut(units);
  }

  async takeOut(units: number): Promise<void> {
    const { stable, replicas } = this.stable;
    this.lifecycle.onUndo('old Deployment back to full', async () => {
      const back = await this.steps.scale(stable, replicas, 'up');
      this.stableReplicas = back.replicas;
      this.show('stable', back.replicas, back.available);
    });
    this.stableReplicas = Math.max(0, this.stableReplicas - units);
    const down = await this.steps.scale(stable, this.stableReplicas, 'down');
    this.show('stable', down.replicas, down.available);
  }

  async bringIn(units: number, options: { idle?: boolean } = {}): Promise<void> {
    if (options.idle) await this.pin();
    const next = await this.ensureNext();
    this.nextReplicas += units;
    this.show('next', this.nextReplicas, 0);
    const up = await this.steps.scale(next, this.nextReplicas, 'up');
    this.show('next', up.replicas, up.available);
    const preview = this.previewService();
    if (options.idle && preview !== undefined && this.pinned)
      await this.steps.setServiceSelector(
        preview,
        this.pinTo(await this.steps.templateHash(next)),
        `point ${preview} at ${next}`,
      );
  }

  async switchAll(): Promise<void> {
    const service = this.service();
    const next = await this.ensureNext();
    const pinned = await this.pin();
    const nextHash = await this.steps.templateHash(next);
    this.lifecycle.onUndo('Service switched back', () =>
      this.steps.setServiceSelector(
        service,
        this.pinTo(pinned.stableHash),
        `switch ${service} back to ${this.stable.stable}`,
      ),
    );
    await this.steps.setServiceSelector(service, this.pinTo(nextHash), `switch ${service} to ${next}`);
  }

  /** The Service selects both versions' pods: the share is the new version's part of the replicas. */
  shiftTraffic(): Promise<number> {
    return Promise.resolve(Math.round((10_000 * this.nextReplicas) / this.stable.replicas) / 100);
  }

  evenTraffic(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Watches the new version's pods for the window: all available, none restarting. With target.metrics, each
   * pod's request counters are read at the start and the end of the window too, and the new pods' 5xx share and
   * mean response time are judged against the old ones', as a fleet's are from its load balancer.
   */
  async observe(analysis: CanaryAnalysis, step: number): Promise<Observation> {
    const next = await this.ensureNext();
    const summary = `analysis ${step}: ${this.nextReplicas} pods of ${next} for ${Math.round(analysis.window / 1000)} s`;
    const { metrics } = this.spec.target;
    const deployments = [next, this.stable.stable];
    const before = metrics && (await this.steps.samplePods(metrics, deployments, `analysis ${step}: start`));
    try {
      await this.steps.watchCanary(next, this.nextReplicas, analysis.window, summary);
    } catch (error) {
      return { passed: false, summary, problems: [failureMessage(error)] };
    }
    if (!metrics || !before) return { passed: true, summary, problems: [] };
    const after = await this.steps.samplePods(metrics, deployments, `analysis ${step}: end`);
    const canaries = after.pods[next] ?? [];
    const stables = after.pods[this.stable.stable] ?? [];
    const verdict = judgeCanary(analysis, canaries, stables, before.counters, after.counters);
    // A new pod whose figures can't be read can't be judged, so it fails the analysis; an old one is left out.
    const unread = canaries
      .filter((pod) => pod in after.unreadable)
      .map((pod) => `the metrics of new pod ${pod} could not be read: ${after.unreadable[pod]}`);
    const problems = [...unread, ...verdict.problems];
    return {
      passed: problems.length === 0,
      summary,
      canary: verdict.canary,
      stable: verdict.stable,
      problems,
    };
  }

  runHook(hook: HookCommand): Promise<void> {
    return this.steps.hook(hook);
  }

  /**
   * The old Deployment stays, at 0, as the way back; older ones Baton made go. A pinned Service gets its own
   * selector back once the old pods are gone.
   */
  async finish(): Promise<void> {
    const { stable, next } = this.stable;
    if (this.pinned) {
      const gone = await this.steps.scale(stable, 0, 'down');
      this.show('stable', gone.replicas, gone.available);
      await this.unpin();
    }
    await this.steps.prune([stable, next]);
  }

  /** The new version's Deployment, made on first use; the undo scales it to 0 and deletes it. */
  async ensureNext(): Promise<string> {
    if (this.next !== undefined) return this.next;
    this.lifecycle.onUndo('new Deployment deleted', async () => {
      if (this.next === undefined) return;
      await this.steps.scale(this.next, 0, 'down');
      await this.steps.delete(this.next);
      this.nextReplicas = 0;
      this.show('next', 0, 0);
    });
    this.next = (await this.steps.ensureVersionDeployment(this.stable.stable)).name;
    this.show('next', 0, 0);
    return this.next;
  }

  /** Pins the Service (and the preview Service, if any) to the old pods, so new ones take no request yet. */
  private async pin(): Promise<{ stableHash: string; selector: Record<string, string> }> {
    if (this.pinned) return this.pinned;
    const service = this.service();
    const { stable, serviceSelector } = this.stable;
    const stableHash = await this.steps.templateHash(stable);
    this.lifecycle.onUndo('Service selector given back', () => this.unpin());
    this.pinned = { stableHash, selector: serviceSelector ?? {} };
    await this.steps.setServiceSelector(service, this.pinTo(stableHash), `pin ${service} to ${stable}`);
    return this.pinned;
  }

  private async unpin(): Promise<void> {
    if (!this.pinned) return;
    const service = this.service();
    const { selector } = this.pinned;
    await this.steps.setServiceSelector(service, selector, `give ${service} its own selector back`);
    const preview = this.previewService();
    if (preview !== undefined)
      await this.steps.setServiceSelector(preview, selector, `${preview} selects what ${service} selects`);
  }

  private pinTo(hash: string): Record<string, string> {
    return { ...(this.pinned?.selector ?? this.stable.serviceSelector ?? {}), 'pod-template-hash': hash };
  }

  private service(): string {
    const { service } = this.spec.target;
    // The preflight rejects a blue/green rollout without one.
    if (service === undefined) throw new Error('target.service: no Service to switch');
    return service;
  }

  private previewService(): string | undefined {
    return this.spec.strategy.type === 'blue-green' ? this.spec.strategy.previewService : undefined;
  }

  /** The status query's view of one side. */
  show(role: DeploymentStatus['role'], replicas: number, available: number): void {
    const found = this.stable;
    const name = role === 'stable' ? found.stable : (this.next ?? found.next);
    const version = role === 'stable' ? found.fromVersion : this.spec.version;
    this.state.setDeployment(found.replicas, { role, name, version, replicas, available });
  }
}
