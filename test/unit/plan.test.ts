import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Fenceposts, ReplicaCount, ReplicaStep } from '../../workflows/plan';
import {
  nextServerNames,
  oldestFirst,
  canaryCount,
  canaryWeights,
  count,
  judgeCanary,
  failureBudgetExceeded,
  maxServersOut,
  nextReplicaStep,
  percent,
  planBatches,
  resolveFenceposts,
  resolveQuantity,
} from '../../workflows/plan';

const servers = (n: number) => Array.from({ length: n }, (_, i) => `web-${i + 1}`);

describe('resolveQuantity', () => {
  const cases: Array<[string, Parameters<typeof resolveQuantity>, number]> = [
    ['a count is itself', [count(3), 10, 'up'], 3],
    ['25% of 10 rounds up to 3', [percent(25), 10, 'up'], 3],
    ['25% of 10 rounds down to 2', [percent(25), 10, 'down'], 2],
    ['7% of 100 is exactly 7 despite floating point', [percent(7), 100, 'up'], 7],
    ['10% of 3 rounds down to 0', [percent(10), 3, 'down'], 0],
    ['100% of 9 is 9', [percent(100), 9, 'down'], 9],
  ];
  for (const [name, args, expected] of cases) {
    it(name, () => assert.equal(resolveQuantity(...args), expected));
  }
});

describe('planBatches', () => {
  it('splits 9 servers two at a time into 5 batches, the last of one', () => {
    assert.deepEqual(
      planBatches(servers(9), count(2)).map((b) => b.length),
      [2, 2, 2, 2, 1],
    );
  });
  it('splits 10 servers at 25% into 3, 3, 3, 1', () => {
    assert.deepEqual(
      planBatches(servers(10), percent(25)).map((b) => b.length),
      [3, 3, 3, 1],
    );
  });
  it('moves at least one server when a percent rounds to zero', () => {
    assert.deepEqual(
      planBatches(servers(3), percent(1)).map((b) => b.length),
      [1, 1, 1],
    );
  });
  it('keeps the inventory order', () => {
    assert.deepEqual(planBatches(servers(3), count(2)), [['web-1', 'web-2'], ['web-3']]);
  });
  it('plans nothing for an empty fleet', () => assert.deepEqual(planBatches([], count(2)), []));
});

describe('maxServersOut', () => {
  it('is the batch size when maxUnavailable is not set', () =>
    assert.equal(maxServersOut(9, count(2), undefined), 2));
  it('is capped by maxUnavailable', () => assert.equal(maxServersOut(9, count(4), count(1)), 1));
  it('rounds a percent maxUnavailable down, but to at least one', () => {
    assert.equal(maxServersOut(10, count(5), percent(25)), 2);
    assert.equal(maxServersOut(3, count(2), percent(10)), 1);
  });
  it('rejects a literal maxUnavailable of 0 naming the field', () => {
    assert.throws(() => maxServersOut(9, count(2), count(0)), /maxUnavailable/);
  });
});

describe('resolveFenceposts (Kubernetes rounding)', () => {
  const cases: Array<
    [string, Parameters<typeof resolveFenceposts>, { maxSurge: number; maxUnavailable: number }]
  > = [
    [
      '25%/25% of 10: surge up, unavailable down',
      [10, percent(25), percent(25)],
      { maxSurge: 3, maxUnavailable: 2 },
    ],
    ['10%/10% of 3', [3, percent(10), percent(10)], { maxSurge: 1, maxUnavailable: 0 }],
    [
      'surge 0 and 10% of 3 rounding to 0 becomes unavailable 1',
      [3, count(0), percent(10)],
      { maxSurge: 0, maxUnavailable: 1 },
    ],
    ['counts pass through', [5, count(2), count(1)], { maxSurge: 2, maxUnavailable: 1 }],
    ['Kubernetes default 25%/25% of 4', [4, percent(25), percent(25)], { maxSurge: 1, maxUnavailable: 1 }],
  ];
  for (const [name, args, expected] of cases) {
    it(name, () => assert.deepEqual(resolveFenceposts(...args), expected));
  }
  it('rejects both zero, naming both fields', () => {
    assert.throws(() => resolveFenceposts(10, count(0), percent(0)), /maxSurge and maxUnavailable/);
  });
});

describe('failureBudgetExceeded', () => {
  it('a budget of 0 is exceeded by the first failure', () =>
    assert.equal(failureBudgetExceeded(1, 9, 0), true));
  it('no failure never exceeds', () => assert.equal(failureBudgetExceeded(0, 9, 0), false));
  it('exactly at the budget is not past it', () => assert.equal(failureBudgetExceeded(1, 10, 10), false));
  it('one more than the budget is past it', () => assert.equal(failureBudgetExceeded(2, 10, 10), true));
  it('100% never stops', () => assert.equal(failureBudgetExceeded(10, 10, 100), false));
});

/**
 * Drives nextReplicaStep the way the Kubernetes strategy does: pods of `to` become available when asked for
 * (unless `toWorks` is false), scale-downs take the unavailable pods first. Checks both promises after each step.
 */
function simulate(
  desired: number,
  fenceposts: Fenceposts,
  start: { from: ReplicaCount; to: ReplicaCount },
  toWorks = true,
): { steps: ReplicaStep[]; end: ReplicaStep; from: ReplicaCount; to: ReplicaCount } {
  let { from, to } = start;
  const steps: ReplicaStep[] = [];
  for (let i = 0; i < 1_000; i++) {
    const step = nextReplicaStep(desired, fenceposts, from, to);
    if (step.kind === 'done' || step.kind === 'wait') return { steps, end: step, from, to };
    steps.push(step);
    if (step.kind === 'scale-up') to = { replicas: step.replicas, available: toWorks ? step.replicas : 0 };
    else from = { replicas: step.replicas, available: Math.min(from.available, step.replicas) };
    assert.ok(
      from.replicas + to.replicas <= desired + fenceposts.maxSurge,
      `surge exceeded: ${JSON.stringify({ from, to })}`,
    );
    const startAvailable = start.from.available + start.to.available;
    assert.ok(
      from.available + to.available >= Math.min(startAvailable, desired - fenceposts.maxUnavailable),
      `capacity lost: ${JSON.stringify({ from, to })}`,
    );
  }
  throw new Error('did not settle in 1,000 steps');
}

describe('nextReplicaStep (Kubernetes rolling)', () => {
  const fresh = (n: number) => ({ from: { replicas: n, available: n }, to: { replicas: 0, available: 0 } });

  it('moves 10 replicas with 25%/25% as a Deployment does: up 3, down to 5, up to 8, down to 0, up to 10', () => {
    const { steps, end } = simulate(10, resolveFenceposts(10, percent(25), percent(25)), fresh(10));
    assert.deepEqual(steps, [
      { kind: 'scale-up', replicas: 3 },
      { kind: 'scale-down', replicas: 5 },
      { kind: 'scale-up', replicas: 8 },
      { kind: 'scale-down', replicas: 0 },
      { kind: 'scale-up', replicas: 10 },
    ]);
    assert.equal(end.kind, 'done');
  });

  it('with no surge, takes pods away before adding any', () => {
    const { steps } = simulate(4, { maxSurge: 0, maxUnavailable: 1 }, fresh(4));
    assert.deepEqual(steps[0], { kind: 'scale-down', replicas: 3 });
    assert.deepEqual(steps[1], { kind: 'scale-up', replicas: 1 });
  });

  it('with a new version that never becomes available, stops and waits without losing capacity', () => {
    const { end, from, to } = simulate(10, { maxSurge: 3, maxUnavailable: 0 }, fresh(10), false);
    assert.equal(end.kind, 'wait');
    assert.deepEqual(from, { replicas: 10, available: 10 });
    assert.deepEqual(to, { replicas: 3, available: 0 });
  });

  it('rolls back from a broken new version: unavailable pods go at once, the old version returns to full', () => {
    // Swapped sides: from = the broken new Deployment, to = the old one, partly scaled down.
    const { steps, end, from, to } = simulate(
      10,
      { maxSurge: 3, maxUnavailable: 2 },
      {
        from: { replicas: 5, available: 0 },
        to: { replicas: 8, available: 8 },
      },
    );
    assert.deepEqual(steps[0], { kind: 'scale-down', replicas: 0 });
    assert.equal(end.kind, 'done');
    assert.deepEqual(
      { from, to },
      { from: { replicas: 0, available: 0 }, to: { replicas: 10, available: 10 } },
    );
  });

  it('always finishes, within both promises, for any size and fence posts', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 0, max: 100 }),
        (desired, surgePct, unavailablePct) => {
          fc.pre(surgePct > 0 || unavailablePct > 0);
          const fenceposts = resolveFenceposts(desired, percent(surgePct), percent(unavailablePct));
          const { end, from, to } = simulate(desired, fenceposts, fresh(desired));
          assert.equal(end.kind, 'done');
          assert.deepEqual(
            { from, to },
            { from: { replicas: 0, available: 0 }, to: { replicas: desired, available: desired } },
          );
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('canary plans', () => {
  it('gives the canary the share of servers it gets of traffic, at least one', () => {
    assert.equal(canaryCount(10, 10), 1);
    assert.equal(canaryCount(10, 25), 3);
    assert.equal(canaryCount(10, 1), 1);
    assert.equal(canaryCount(3, 100), 3);
    assert.equal(canaryCount(7, 70), 5);
  });

  it('finds integer weights that give the share asked for', () => {
    assert.deepEqual(canaryWeights(10, 1, 10), { canary: 1, stable: 1, share: 10 });
    const five = canaryWeights(10, 1, 5);
    assert.equal(five.share, 5);
    assert.equal(five.canary / (five.canary + 9 * five.stable), 0.05);
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 200 }), fc.integer({ min: 1, max: 99 }), (total, weight) => {
        const canaries = canaryCount(total, weight);
        if (canaries >= total) return;
        const weights = canaryWeights(total, canaries, weight);
        assert.ok(weights.canary >= 1 && weights.canary <= 256, `canary weight ${weights.canary}`);
        assert.ok(weights.stable >= 1 && weights.stable <= 256, `stable weight ${weights.stable}`);
        const share =
          (100 * canaries * weights.canary) /
          (canaries * weights.canary + (total - canaries) * weights.stable);
        assert.ok(Math.abs(share - weights.share) < 1e-9);
        // Within half a point whenever HAProxy's weights can express it (one server at 256 vs 199 at 1 cannot).
        const reachable = (canaries * 256) / (canaries * 256 + (total - canaries)) >= weight / 100;
        if (reachable) assert.ok(Math.abs(share - weight) <= 0.5, `${total}/${canaries}/${weight}: ${share}`);
      }),
      { numRuns: 500 },
    );
  });

  const sample = (responses: number, errors: number, responseTimeMs = 10) => ({
    responses,
    errors,
    responseTimeMs,
  });

  it('passes a canary that answers like the stable servers', () => {
    const verdict = judgeCanary(
      {},
      ['web-1'],
      ['web-2', 'web-3'],
      { 'web-1': sample(100, 0), 'web-2': sample(1000, 1), 'web-3': sample(1000, 0) },
      { 'web-1': sample(200, 0), 'web-2': sample(1100, 1), 'web-3': sample(1100, 0) },
    );
    assert.deepEqual(verdict.problems, []);
    assert.equal(verdict.passed, true);
    assert.deepEqual(verdict.canary, { requests: 100, errorRate: 0, responseTimeMs: 10 });
    assert.deepEqual(verdict.stable, { requests: 200, errorRate: 0, responseTimeMs: 10 });
  });

  it('fails a canary on its 5xx rate, alone and against the stable servers, and on its response time', () => {
    const errors = judgeCanary(
      {},
      ['web-1'],
      ['web-2'],
      { 'web-1': sample(0, 0), 'web-2': sample(0, 0) },
      { 'web-1': sample(100, 20), 'web-2': sample(100, 0) },
    );
    assert.equal(errors.passed, false);
    assert.equal(errors.canary.errorRate, 20);
    assert.match(errors.problems.join('\n'), /5xx rate 20% is above 5%/);
    assert.match(errors.problems.join('\n'), /more than 1 points above the stable servers' 0%/);
    const slow = judgeCanary(
      { maxResponseTimeRatio: 1.5 },
      ['web-1'],
      ['web-2'],
      { 'web-1': sample(0, 0), 'web-2': sample(0, 0) },
      { 'web-1': sample(100, 0, 40), 'web-2': sample(100, 0, 20) },
    );
    assert.deepEqual(slow.problems, [
      "the canary's mean response time 40 ms is more than 1.5x the stable servers' 20 ms",
    ]);
  });

  it('fails a canary that saw too few requests to judge', () => {
    const verdict = judgeCanary(
      { minRequests: 50 },
      ['web-1'],
      ['web-2'],
      { 'web-1': sample(10, 0), 'web-2': sample(10, 0) },
      { 'web-1': sample(30, 0), 'web-2': sample(300, 0) },
    );
    assert.equal(verdict.passed, false);
    assert.match(verdict.problems[0] ?? '', /served 20 requests in the window, fewer than the 50/);
  });
});

describe('server names and creation order', () => {
  it('orders servers by the number their name ends with, unnumbered first', () => {
    const names = (list: Array<{ name: string }>) => list.map((s) => s.name);
    assert.deepEqual(names(oldestFirst([{ name: 'web-10' }, { name: 'web-9' }, { name: 'db' }])), [
      'db',
      'web-9',
      'web-10',
    ]);
  });

  it('names new servers after the newest, never reusing a name', () => {
    assert.deepEqual(nextServerNames(['web-1', 'web-2'], 2, 'shop'), ['web-3', 'web-4']);
    assert.deepEqual(nextServerNames(['alpha', 'beta'], 2, 'shop'), ['shop-1', 'shop-2']);
    assert.deepEqual(nextServerNames(['web-9', 'api-10'], 1, 'shop'), ['api-11']);
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 50 }), { maxLength: 20 }),
        fc.nat(10),
        (ns, count) => {
          const existing = ns.map((n) => `web-${n}`);
          const created = nextServerNames(existing, count, 'web');
          assert.equal(created.length, count);
          assert.equal(new Set([...existing, ...created]).size, existing.length + count);
          // Every new server sorts after every existing one.
          const order = oldestFirst([...created, ...existing].map((name) => ({ name }))).map((s) => s.name);
          assert.deepEqual(order.slice(existing.length), created);
        },
      ),
    );
  });
});
