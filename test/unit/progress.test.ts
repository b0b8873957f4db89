import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderStatus } from '../../client/progress';
import type { RolloutStatus } from '../../workflows/messages';

const canaryStatus: RolloutStatus = {
  target: 'web',
  strategy: 'canary',
  phase: 'rolling-back',
  toVersion: 'v2',
  batch: 2,
  batches: 4,
  failedServers: 0,
  servers: [
    { name: 'web-1', version: 'v2', fromVersion: 'v1', step: 'restoring' },
    { name: 'web-2', version: 'v1', fromVersion: 'v1', step: 'pending' },
  ],
  canary: {
    weight: 10,
    step: 2,
    steps: 3,
    canaries: 1,
    analyses: [
      {
        step: 2,
        passed: false,
        at: '2026-11-22T06:00:00.000Z',
        canary: { requests: 120, errorRate: 30, responseTimeMs: 21 },
        stable: { requests: 1080, errorRate: 0, responseTimeMs: 20 },
        problems: ["the canary's 5xx rate 30% is above 5%"],
      },
    ],
  },
  reason: 'analysis at step 2 failed',
  commands: [],
};

describe('baton watch view', () => {
  it('shows a canary’s step, weight and every analysis with its figures', () => {
    const lines = renderStatus(canaryStatus, { colour: false });
    assert.equal(lines[0], 'web  canary  → v2  step 2/3  weight 10%  rolling-back');
    assert.ok(lines.includes('  web-1  v2        restoring'));
    assert.ok(
      lines.includes(
        "  analysis 2 failed: canary 120 req, 30% 5xx, 21 ms; stable 1080 req, 0% 5xx, 20 ms (the canary's 5xx rate 30% is above 5%)",
      ),
      lines.join('\n'),
    );
    assert.equal(lines.at(-1), '  reason: analysis at step 2 failed');
  });

  it('paints only when asked', () => {
    assert.ok(renderStatus(canaryStatus, { colour: true }).some((l) => l.includes('\x1b[31m')));
    assert.ok(!renderStatus(canaryStatus, { colour: false }).some((l) => l.includes('\x1b[')));
  });
});
