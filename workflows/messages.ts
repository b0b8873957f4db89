import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { RolloutSpec } from '../spec';
import type { GroupFigures } from './plan/canary';

/** The task queue Baton's workers poll unless configured otherwise. */
export const defaultTaskQueue = 'baton';

/** One live rollout per target: a second start for a busy target is refused by Temporal's id uniqueness. */
export const rolloutWorkflowId = (target: string): string => `rollout/${target}`;

/**
 * The infrastructure a spec changes, as the id of its lock: an HAProxy backend behind its admin socket, or a
 * Deployment in its namespace. The workers of one task queue reach one set of load balancers and one cluster, so
 * the task queue is part of it.
 */
export function lockWorkflowId(
  target:
    | { kind: 'fleet'; loadBalancer: { haproxy: { socket: string; backend: string } } }
    | { kind: 'kubernetes'; namespace: string; deployment: string },
  taskQueue: string,
): string {
  const what =
    target.kind === 'fleet'
      ? `haproxy:${target.loadBalancer.haproxy.socket}:${target.loadBalancer.haproxy.backend}`
      : `kubernetes:${target.namespace}/${target.deployment}`;
  return `lock/${taskQueue}/${what}`;
}

export type RolloutPhase =
  | 'starting'
  | 'progressing'
  | 'paused'
  | 'rolling-back'
  | 'succeeded'
  | 'rolled-back'
  | 'failed';

export type ServerStep =
  | 'pending'
  | 'create'
  | 'detach'
  | 'drain'
  | 'upgrade'
  | 'verify'
  | 'attach'
  | 'done'
  | 'failed'
  | 'restoring'
  | 'restored'
  /** Out of rotation, kept as the way back until the rollout succeeds. */
  | 'retired'
  /** Taken out of the backend and destroyed. */
  | 'destroyed';

export interface ServerStatus {
  readonly name: string;
  /** The version the server ran before the rollout (what a rollback restores). */
  readonly fromVersion?: string;
  /** The version the server runs now, as far as Baton knows. */
  readonly version?: string;
  readonly step: ServerStep;
  /** Why the server failed, when it did. */
  readonly error?: string;
  /** The drain timed out and the policy ("force") sent the server on with requests still in flight. */
  readonly drainForced?: boolean;
}

/** A Deployment taking part in a Kubernetes rollout. */
export interface DeploymentStatus {
  readonly name: string;
  /** "stable" serves the version being replaced; "next" runs the version being rolled out. */
  readonly role: 'stable' | 'next';
  readonly version: string;
  readonly replicas: number;
  readonly available: number;
}

/** One canary analysis, as it ended. */
export interface AnalysisRecord {
  /** 1-based canary step. */
  readonly step: number;
  readonly passed: boolean;
  /** Workflow time it ended, ISO 8601. */
  readonly at: string;
  /**
   * What the request figures showed for the canary and the stable version over the window: a fleet's load balancer
   * counters, or each pod's metrics page.
   */
  readonly canary?: GroupFigures;
  readonly stable?: GroupFigures;
  /** Kubernetes: what was watched; a fleet: why the window judged was not the first. */
  readonly summary?: string;
  readonly problems: readonly string[];
}

export interface CanaryStatus {
  /** The canary's share of traffic now, in percent (0 before the first setWeight, 100 once promoted). */
  readonly weight: number;
  /** 1-based step in progress; steps + 1 while the new version is promoted to everyone. */
  readonly step: number;
  readonly steps: number;
  /** Servers or pods on the new version that carry the canary's share. */
  readonly canaries: number;
  readonly analyses: readonly AnalysisRecord[];
}

export interface RolloutStatus {
  readonly target: string;
  readonly strategy: string;
  readonly phase: RolloutPhase;
  readonly toVersion: string;
  /** 1-based index of the batch in progress, 0 before the first. */
  readonly batch: number;
  readonly batches: number;
  readonly servers: readonly ServerStatus[];
  readonly failedServers: number;
  /** Kubernetes targets: the Deployments of the two versions, and the replicas the app should have. */
  readonly kubernetes?: { readonly desired: number; readonly deployments: readonly DeploymentStatus[] };
  /** Canary rollouts: the weight, the step and every analysis so far. */
  readonly canary?: CanaryStatus;
  /** Why the rollout rolled back or failed. */
  readonly reason?: string;
  /** Set while the rollout waits: paused by an operator, or at a gate that needs `promote`. */
  readonly waiting?: {
    readonly for: 'resume' | 'promote';
    readonly at: string;
    readonly reason?: string;
    /** When a timed pause ends, or an approval gate times out. */
    readonly until?: string;
  };
  /** Every operator command the rollout accepted, oldest first. */
  readonly commands: readonly AcceptedCommand[];
}

export interface RolloutResult {
  readonly phase: Extract<RolloutPhase, 'succeeded' | 'rolled-back'>;
  readonly reason?: string;
  readonly toVersion: string;
  readonly servers: readonly ServerStatus[];
  readonly kubernetes?: RolloutStatus['kubernetes'];
}

export const statusQuery = defineQuery<RolloutStatus>('status');

/**
 * The workflows as a client starts them, so that clients import their types from here alone (workflows/index.ts
 * checks that the workflows keep to them). A rollout's engine takes a second argument of its own, a run's cursor,
 * that no client passes.
 */
export type RolloutWorkflow = (spec: RolloutSpec) => Promise<RolloutResult>;
export type InfrastructureLockWorkflow = (holder: string, holderStartGraceMs?: number) => Promise<void>;

/** Search attributes, so `baton list` and the Temporal UI can filter rollouts. Registered by infra/temporal. */
export const searchAttributes = {
  target: defineSearchAttributeKey('BatonTarget', SearchAttributeType.KEYWORD),
  strategy: defineSearchAttributeKey('BatonStrategy', SearchAttributeType.KEYWORD),
  phase: defineSearchAttributeKey('BatonPhase', SearchAttributeType.KEYWORD),
  fromVersion: defineSearchAttributeKey('BatonFromVersion', SearchAttributeType.KEYWORD),
  toVersion: defineSearchAttributeKey('BatonToVersion', SearchAttributeType.KEYWORD),
} as const;

/** Sent by the rollout holding a lock when it ends; carries its workflow id. */
export const releaseLockSignal = defineSignal<[string]>('release');

/**
 * A lock is taken before its holder starts: for this long after the lock started, a holder with no run started
 * since is on its way, not gone. Past it, the client that took the lock is taken to have given up.
 */
export const lockHolderStartGraceMs = 60_000;

/**
 * Locks are filed under a namespace division of their own: Temporal's lists (the UI's, `temporal workflow list`)
 * leave out every workflow with a division unless the query names it, as they do the server's own scheduler
 * workflows, so the list shows rollouts. `TemporalNamespaceDivision = 'BatonLock'` lists the locks.
 */
export const lockDivision = {
  key: defineSearchAttributeKey('TemporalNamespaceDivision', SearchAttributeType.KEYWORD),
  value: 'BatonLock',
} as const;

/** Who sends an operator command and why; recorded in the workflow history with the command. */
export interface OperatorCommand {
  readonly reason?: string;
  /** The sender, e.g. "alice@laptop"; the CLI fills it in. */
  readonly by?: string;
}

export interface PromoteCommand extends OperatorCommand {
  /** Skip every remaining pause and gate, not only the current one. */
  readonly full?: boolean;
}

export interface AcceptedCommand extends PromoteCommand {
  readonly command: 'pause' | 'resume' | 'promote' | 'abort';
  /** Workflow time, ISO 8601. */
  readonly at: string;
}

/**
 * Operator commands as updates, so the sender hears at once whether the rollout accepted them (and why not), and
 * as signals of the same names, so `temporal workflow signal --name pause` works too.
 */
export const pauseUpdate = defineUpdate<RolloutStatus, [OperatorCommand]>('pause');
export const resumeUpdate = defineUpdate<RolloutStatus, [OperatorCommand]>('resume');
export const promoteUpdate = defineUpdate<RolloutStatus, [PromoteCommand]>('promote');
export const abortUpdate = defineUpdate<RolloutStatus, [OperatorCommand]>('abort');
export const pauseSignal = defineSignal<[OperatorCommand]>('pause');
export const resumeSignal = defineSignal<[OperatorCommand]>('resume');
export const promoteSignal = defineSignal<[PromoteCommand]>('promote');
export const abortSignal = defineSignal<[OperatorCommand]>('abort');

/**
 * Why a command can't act on a rollout that has ended, and what to do instead; the same words from the rollout's
 * own refusal and from the CLI, which refuses before it asks a closed workflow.
 */
export function endedRefusal(target: string, phase: string): string {
  if (phase === 'succeeded')
    return `the rollout has already succeeded: \`baton undo ${target}\` takes it back`;
  if (phase === 'rolled-back')
    return `the rollout has already rolled back: \`baton retry ${target}\` starts it again`;
  return `the rollout has already ${phase}: \`baton retry ${target}\` starts it again`;
}
