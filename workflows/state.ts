import { upsertSearchAttributes } from '@temporalio/workflow';
import type {
  AcceptedCommand,
  AnalysisRecord,
  CanaryStatus,
  DeploymentStatus,
  RolloutPhase,
  RolloutStatus,
  ServerStatus,
  ServerStep,
} from './messages';
import { searchAttributes } from './messages';

type MutableServerStatus = { -readonly [K in keyof ServerStatus]: ServerStatus[K] };

/** Everything a rollout knows about itself; the status query reads it, strategies write it. */
export class RolloutState {
  phase: RolloutPhase = 'starting';
  batch = 0;
  batches = 0;
  failedServers = 0;
  reason?: string;
  waiting?: RolloutStatus['waiting'];
  /** Counts every change of a server or Deployment: the progress deadline watches it. */
  progress = 0;
  readonly commands: AcceptedCommand[] = [];
  canary?: Omit<CanaryStatus, 'analyses'> & { analyses: AnalysisRecord[] };
  private readonly servers = new Map<string, MutableServerStatus>();
  private kubernetes?: { desired: number; deployments: Map<DeploymentStatus['role'], DeploymentStatus> };

  constructor(
    readonly target: string,
    readonly strategy: string,
    readonly toVersion: string,
    serverNames: readonly string[],
  ) {
    for (const name of serverNames) this.servers.set(name, { name, step: 'pending' });
  }

  /** Hears every phase change and promotion (the notifier). */
  listener?: (change: RolloutPhase | 'promoted') => void;
  fromVersion?: string;

  setPhase(phase: RolloutPhase, reason?: string): void {
    const changed = phase !== this.phase;
    this.phase = phase;
    if (reason !== undefined) this.reason = reason;
    upsertSearchAttributes([{ key: searchAttributes.phase, value: phase }]);
    if (changed) this.listener?.(phase);
  }

  /** The version the target ran before the rollout, once known; searchable as BatonFromVersion. */
  setFromVersion(version: string): void {
    this.fromVersion = version;
    upsertSearchAttributes([{ key: searchAttributes.fromVersion, value: version }]);
  }

  setDeployment(desired: number, deployment: DeploymentStatus): void {
    this.kubernetes ??= { desired, deployments: new Map() };
    this.kubernetes.desired = desired;
    this.kubernetes.deployments.set(deployment.role, deployment);
    this.progress++;
  }

  deployment(role: DeploymentStatus['role']): DeploymentStatus | undefined {
    return this.kubernetes?.deployments.get(role);
  }

  /** Records a canary's new weight or step; a change of either counts as progress. */
  setCanary(patch: Partial<Omit<CanaryStatus, 'analyses' | 'steps'>>): void {
    if (!this.canary) return;
    Object.assign(this.canary, patch);
    this.progress++;
  }

  /** A server that joined during the rollout (created by it, or found in the backend at its start). */
  addServer(name: string, patch: Partial<Omit<ServerStatus, 'name'>> = {}): void {
    if (!this.servers.has(name)) this.servers.set(name, { name, step: 'pending' });
    this.update(name, patch);
  }

  server(name: string): ServerStatus {
    const server = this.servers.get(name);
    if (!server) throw new Error(`unknown server ${name}`);
    return server;
  }

  update(name: string, patch: Partial<Omit<ServerStatus, 'name'>>): void {
    const server = this.servers.get(name);
    if (!server) throw new Error(`unknown server ${name}`);
    Object.assign(server, patch);
    this.progress++;
  }

  setStep(name: string, step: ServerStep): void {
    this.update(name, { step });
  }

  status(): RolloutStatus {
    return {
      target: this.target,
      strategy: this.strategy,
      phase: this.phase,
      toVersion: this.toVersion,
      batch: this.batch,
      batches: this.batches,
      failedServers: this.failedServers,
      servers: [...this.servers.values()].map((s) => ({ ...s })),
      ...(this.kubernetes
        ? {
            kubernetes: {
              desired: this.kubernetes.desired,
              deployments: [...this.kubernetes.deployments.values()].map((d) => ({ ...d })),
            },
          }
        : {}),
      ...(this.canary
        ? { canary: { ...this.canary, analyses: this.canary.analyses.map((a) => ({ ...a })) } }
        : {}),
      ...(this.reason !== undefined ? { reason: this.reason } : {}),
      ...(this.waiting !== undefined ? { waiting: { ...this.waiting } } : {}),
      commands: this.commands.map((c) => ({ ...c })),
    };
  }
}
