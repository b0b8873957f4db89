import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runToEnd } from '../helpers/process';

const root = join(__dirname, '..', '..');

// On the real node's lane: the demo's pods run on this machine's one real Kubernetes node.
describe('npm run demo --target kubernetes', () => {
  it('--target kubernetes --strategy canary judges the canary pods by the request figures they serve', async () => {
    const env = { ...process.env };
    delete env.TEMPORAL_ADDRESS;
    const args = ['--target', 'kubernetes', '--strategy', 'canary', '--servers', '4', '--json'];
    const { code, stdout, stderr } = await runToEnd('npm', ['run', '--silent', 'demo', '--', ...args], {
      cwd: root,
      env,
    });
    assert.equal(code, 0, `${stdout}\n${stderr.slice(-3_000)}`);
    const summary = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as Record<string, unknown>;
    assert.equal(summary.phase, 'succeeded');
    assert.equal(summary.onNewVersion, 4);
    assert.equal(summary.failed, 0);
    // Each analysis read the pods' own counters: requests the canary and the old pods answered, by status code.
    for (const step of [2, 4])
      assert.match(
        stderr,
        new RegExp(`analysis ${step} passed: canary [1-9]\\d* req, 0% 5xx, [\\d.]+ ms; stable`),
      );
  });
});
