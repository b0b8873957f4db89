import type { ActivityOptions, LocalActivityOptions } from '@temporalio/workflow';
import type { DrainPolicy, HttpVerification } from '../spec/rollout';

/**
 * Load balancer commands: quick, idempotent, worth retrying through a short outage of the admin socket. A short
 * timeout, so a command lost with a dead worker is retried by the next one within seconds.
 */
export const loadBalancerProfile = {
  startToCloseTimeout: '10s',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '10s', maximumAttempts: 20 },
} as const satisfies ActivityOptions;

/** Attaching waits for the load balancer's health checks to see the server UP, which takes a few check intervals. */
export const attachProfile = {
  startToCloseTimeout: '5m',
  heartbeatTimeout: '15s',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '10s', maximumAttempts: 10 },
} as const satisfies ActivityOptions;

/**
 * A group's load balancer commands as local activities: they take milliseconds, so running them inside the
 * workflow task saves the round trip through the server that a step's activity costs (a third of a batch's
 * engine overhead). Retries back off inside the worker; a worker that dies in one loses its workflow task, and
 * the next worker runs the command again (it sets a desired state, so that is harmless).
 */
export const localLoadBalancerProfile = {
  startToCloseTimeout: '10s',
  retry: loadBalancerProfile.retry,
} as const satisfies LocalActivityOptions;

/** Attaching a group as a local activity: it waits for HAProxy's checks to see every server UP. */
export const localAttachProfile = {
  startToCloseTimeout: '5m',
  retry: attachProfile.retry,
} as const satisfies LocalActivityOptions;

/**
 * A lock's wait for its holder to end: as long as a rollout may run (a night's pause, a week's gate), taken over
 * within seconds when its worker dies, retried without end since the lock must not outlive its holder.
 */
export const holderWatchProfile = {
  startToCloseTimeout: '3650d',
  heartbeatTimeout: '20s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
} as const satisfies ActivityOptions;

/** One-shot inspection of the fleet before anything changes. */
export const preflightProfile = {
  startToCloseTimeout: '2m',
  retry: { initialInterval: '1s', maximumAttempts: 3, nonRetryableErrorTypes: ['PreflightFailed'] },
} as const satisfies ActivityOptions;

/** Drains heartbeat so a dead worker is noticed in seconds, not at the end of the drain timeout. */
export function drainProfile(policy: DrainPolicy): ActivityOptions {
  return {
    startToCloseTimeout: policy.onTimeout === 'wait' ? '7d' : policy.timeout + 60_000,
    heartbeatTimeout: '15s',
    retry: { initialInterval: '1s', maximumInterval: '10s', nonRetryableErrorTypes: ['DrainTimeout'] },
  };
}

/**
 * Upgrade commands get three tries: a flaky package mirror should not roll back a fleet. They heartbeat while
 * they run, so a dead worker's upgrade is retried within seconds.
 */
export function upgradeProfile(timeoutMs: number): ActivityOptions {
  return {
    startToCloseTimeout: timeoutMs + 10_000,
    heartbeatTimeout: '15s',
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumAttempts: 3 },
  };
}

export function verifyProfile(check: HttpVerification): ActivityOptions {
  return {
    startToCloseTimeout: check.timeout + check.requestTimeout + 30_000,
    heartbeatTimeout: Math.max(15_000, check.interval + check.requestTimeout + 5_000),
    retry: { initialInterval: '1s', maximumAttempts: 5, nonRetryableErrorTypes: ['VerificationFailed'] },
  };
}

/** Kubernetes API calls: quick and idempotent; conflicts, throttling and 5xx are retried with backoff. */
export const kubernetesApiProfile = {
  startToCloseTimeout: '2m',
  // Calls heartbeat between requests, so a worker that dies mid-call is noticed in seconds, not minutes.
  heartbeatTimeout: '10s',
  retry: {
    initialInterval: '500ms',
    backoffCoefficient: 2,
    maximumInterval: '10s',
    maximumAttempts: 20,
    nonRetryableErrorTypes: ['KubernetesRejected', 'PreflightFailed', 'KubernetesNotConfigured'],
  },
} as const satisfies ActivityOptions;

/** Waiting for pods heartbeats every few seconds; a retried attempt resumes the clock it started. */
export function kubernetesWaitProfile(timeoutMs: number): ActivityOptions {
  return {
    startToCloseTimeout: timeoutMs + 60_000,
    heartbeatTimeout: '15s',
    retry: {
      initialInterval: '1s',
      maximumInterval: '10s',
      maximumAttempts: 10,
      nonRetryableErrorTypes: ['NotAvailable', 'KubernetesRejected'],
    },
  };
}
