import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  count,
  failureBudgetExceeded,
  maxServersOut,
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
