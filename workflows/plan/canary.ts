/** HAProxy's server weights run from 0 to 256; 0 would take a server out of rotation. */
const maxWeight = 256;

/**
 * How many servers or pods carry a canary weight: the same share of the fleet as the share of traffic, at least
 * one, so each canary server takes about the load a stable one does.
 *
 * canaryCount(10, 10) === 1; canaryCount(10, 25) === 3; canaryCount(3, 100) === 3
 */
export function canaryCount(total: number, weightPercent: number): number {
  if (weightPercent >= 100) return total;
  return Math.min(total, Math.max(1, Math.ceil((total * weightPercent) / 100 - 1e-9)));
}

export interface CanaryWeights {
  /** The load balancer weight of each canary server. */
  readonly canary: number;
  /** The load balancer weight of each stable server. */
  readonly stable: number;
  /** The canary's share of traffic these weights give, in percent. */
  readonly share: number;
}

/**
 * Load balancer weights that give `canaries` servers out of `total` the share `weightPercent` of the requests,
 * as close as HAProxy's integer weights (1-256) allow, with the smallest weights among equally close answers.
 *
 * canaryWeights(10, 1, 5) -> { canary: 9, stable: 19 } (9 / (9 + 9 * 19) = 5%)
 */
export function canaryWeights(total: number, canaries: number, weightPercent: number): CanaryWeights {
  const stableCount = total - canaries;
  if (stableCount <= 0 || weightPercent >= 100) return { canary: 1, stable: 1, share: 100 };
  let best: CanaryWeights = { canary: 1, stable: 1, share: (100 * canaries) / total };
  let bestError = Math.abs(best.share - weightPercent);
  for (let canary = 1; canary <= maxWeight && bestError > 1e-9; canary++) {
    const ideal = (canaries * canary * (100 - weightPercent)) / (weightPercent * stableCount);
    for (const stable of [Math.floor(ideal), Math.ceil(ideal)]) {
      if (stable < 1 || stable > maxWeight) continue;
      const share = (100 * canaries * canary) / (canaries * canary + stableCount * stable);
      const error = Math.abs(share - weightPercent);
      if (error < bestError - 1e-9) {
        best = { canary, stable, share };
        bestError = error;
      }
    }
  }
  return best;
}

/** Cumulative counters of one server, as the load balancer reports them. */
export interface ServerCounters {
  /** Responses the server sent (every status class). */
  readonly responses: number;
  /** 5xx responses, plus responses that never came (connection or read errors). */
  readonly errors: number;
  /** The load balancer's running mean of the server's response time, in ms. */
  readonly responseTimeMs: number;
  /**
   * The total time of every timed answer and their count, where the server keeps them (a Prometheus summary or
   * histogram): a window's mean is then the difference of two samples, not a running mean.
   */
  readonly time?: { readonly totalMs: number; readonly count: number };
}

export interface GroupFigures {
  readonly requests: number;
  /** 5xx share in percent. */
  readonly errorRate: number;
  readonly responseTimeMs: number;
}

export interface CanaryVerdict {
  readonly passed: boolean;
  readonly canary: GroupFigures;
  readonly stable: GroupFigures;
  /** Every threshold crossed, in words; empty when passed. */
  readonly problems: readonly string[];
}

/** A canary analysis's thresholds, as the spec gives them. */
export interface CanaryThresholds {
  readonly minRequests?: number;
  readonly maxErrorRate?: number;
  readonly maxErrorRateIncrease?: number;
  readonly maxResponseTimeRatio?: number;
}

/** The thresholds an analysis of request figures applies when the spec leaves them out. */
export const analysisDefaults = {
  minRequests: 20,
  maxErrorRate: 5,
  maxErrorRateIncrease: 1,
  maxResponseTimeRatio: 2,
} as const;

function figures(
  names: readonly string[],
  before: Readonly<Record<string, ServerCounters>>,
  after: Readonly<Record<string, ServerCounters>>,
): GroupFigures {
  let requests = 0;
  let errors = 0;
  let timeMs = 0;
  let timed = 0;
  for (const name of names) {
    const start = before[name];
    const end = after[name];
    if (!end) continue;
    // A restarted server (a load balancer's reload, a pod's container) starts its counters again from 0.
    const restarted = start !== undefined && end.responses < start.responses;
    const delta = (key: 'responses' | 'errors') => (start && !restarted ? end[key] - start[key] : end[key]);
    const served = delta('responses');
    requests += served;
    errors += delta('errors');
    if (end.time) {
      const from = start?.time && !restarted && end.time.count >= start.time.count ? start.time : undefined;
      timeMs += end.time.totalMs - (from?.totalMs ?? 0);
      timed += end.time.count - (from?.count ?? 0);
    } else {
      timeMs += served * end.responseTimeMs;
      timed += served;
    }
  }
  const round = (n: number) => Math.round(n * 100) / 100;
  return {
    requests,
    errorRate: requests === 0 ? 0 : round((100 * errors) / requests),
    responseTimeMs: timed === 0 ? 0 : round(timeMs / timed),
  };
}

/**
 * Judges a canary from two samples of the load balancer's counters taken a window apart: its 5xx share, alone and
 * against the stable servers', and its mean response time against theirs. Too few canary requests fails too: an
 * analysis that saw nothing proves nothing.
 */
export function judgeCanary(
  analysis: CanaryThresholds,
  canaries: readonly string[],
  stables: readonly string[],
  before: Readonly<Record<string, ServerCounters>>,
  after: Readonly<Record<string, ServerCounters>>,
): CanaryVerdict {
  const limits = { ...analysisDefaults, ...analysis };
  const canary = figures(canaries, before, after);
  const stable = figures(stables, before, after);
  const problems: string[] = [];
  if (canary.requests < limits.minRequests) {
    problems.push(
      `the canary served ${canary.requests} requests in the window, fewer than the ${limits.minRequests} needed to judge it`,
    );
  } else {
    if (canary.errorRate > limits.maxErrorRate)
      problems.push(`the canary's 5xx rate ${canary.errorRate}% is above ${limits.maxErrorRate}%`);
    if (stable.requests > 0 && canary.errorRate - stable.errorRate > limits.maxErrorRateIncrease)
      problems.push(
        `the canary's 5xx rate ${canary.errorRate}% is more than ${limits.maxErrorRateIncrease} points above the stable servers' ${stable.errorRate}%`,
      );
    // Sub-millisecond means make ratios meaningless: judge time only past 1 ms.
    const stableTime = Math.max(stable.responseTimeMs, 1);
    if (stable.requests > 0 && canary.responseTimeMs > stableTime * limits.maxResponseTimeRatio)
      problems.push(
        `the canary's mean response time ${canary.responseTimeMs} ms is more than ${limits.maxResponseTimeRatio}x the stable servers' ${stable.responseTimeMs} ms`,
      );
  }
  return { passed: problems.length === 0, canary, stable, problems };
}
