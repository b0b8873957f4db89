import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { podCounters } from '../../activities/metrics/pod-counters';
import type { PodMetrics } from '../../spec/rollout';
import { judgeCanary } from '../../workflows/plan';

const metrics: PodMetrics = {
  path: '/metrics',
  requests: 'demo_requests_total',
  codeLabel: 'code',
  duration: 'demo_request_duration_seconds',
};

const page = (ok: number, failed: number, seconds: number, count: number) =>
  [
    '# HELP demo_requests_total Requests answered, by status code.',
    '# TYPE demo_requests_total counter',
    `demo_requests_total{code="200",version="v2"} ${ok}`,
    `demo_requests_total{code="500",version="v2"} ${failed}`,
    '# TYPE demo_request_duration_seconds summary',
    `demo_request_duration_seconds_sum ${seconds}`,
    `demo_request_duration_seconds_count ${count}`,
  ].join('\n');

describe('a pod metrics page', () => {
  it('gives the answered requests, the 5xx among them and the time they took, without a trailing newline', () => {
    assert.deepEqual(podCounters(page(90, 10, 2.5, 100), metrics), {
      responses: 100,
      errors: 10,
      responseTimeMs: 25,
      time: { totalMs: 2500, count: 100 },
    });
  });

  it('reads a histogram, an OpenMetrics counter family and another code label', () => {
    const text = [
      '# TYPE http_requests counter',
      'http_requests_total{status="503"} 4',
      'http_requests_total{status="404"} 6',
      '# TYPE http_seconds histogram',
      'http_seconds_bucket{le="0.1"} 8',
      'http_seconds_bucket{le="+Inf"} 10',
      'http_seconds_sum 0.5',
      'http_seconds_count 10',
      '',
    ].join('\n');
    const counters = podCounters(text, {
      path: '/metrics',
      requests: 'http_requests_total',
      codeLabel: 'status',
      duration: 'http_seconds',
    });
    assert.equal(counters.responses, 10);
    assert.equal(counters.errors, 4, 'a 404 is not a 5xx');
    assert.deepEqual(counters.time, { totalMs: 500, count: 10 });
  });

  it('names the metric a page lacks, or has as the wrong type', () => {
    assert.throws(
      () => podCounters('# TYPE other counter\nother 1\n', metrics),
      /has no demo_requests_total/,
    );
    assert.throws(
      () => podCounters('# TYPE demo_requests_total gauge\ndemo_requests_total 1\n', metrics),
      /demo_requests_total is a gauge, expected a counter/,
    );
    assert.throws(
      () => podCounters(page(1, 0, 0, 0).replace('summary', 'counter'), metrics),
      /expected a summary or a histogram/,
    );
  });

  it('judges a window from two samples: the difference of the sums, not a running mean', () => {
    const before = {
      'web-v2-a': podCounters(page(100, 0, 1, 100), metrics),
      'web-v1-a': podCounters(page(1000, 0, 10, 1000), metrics),
    };
    // In the window the new pod answered 100 requests in 30 s (300 ms each), the old one 100 in 1 s.
    const after = {
      'web-v2-a': podCounters(page(200, 0, 31, 200), metrics),
      'web-v1-a': podCounters(page(1100, 0, 11, 1100), metrics),
    };
    const verdict = judgeCanary({}, ['web-v2-a'], ['web-v1-a'], before, after);
    assert.equal(verdict.canary.responseTimeMs, 300);
    assert.equal(verdict.stable.responseTimeMs, 10);
    assert.equal(verdict.passed, false);
    assert.match(verdict.problems.join('\n'), /mean response time 300 ms is more than 2x/);
  });

  it('counts a restarted pod from zero', () => {
    const before = { 'web-v2-a': podCounters(page(500, 0, 5, 500), metrics) };
    const after = { 'web-v2-a': podCounters(page(30, 10, 0.4, 40), metrics) };
    const verdict = judgeCanary({ minRequests: 10 }, ['web-v2-a'], [], before, after);
    assert.deepEqual(verdict.canary, { requests: 40, errorRate: 25, responseTimeMs: 10 });
  });
});
