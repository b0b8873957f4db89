import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Fenceposts, ReplicaCount, ReplicaStep } from '../../workflows/plan';
import {
  count,
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
