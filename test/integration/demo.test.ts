import assert from 'node:assert/strict';
import { runToEnd } from '../helpers/process';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const root = join(__dirname, '..', '..');

// `npm run demo` as README.md writes it (the default, --json, --servers, canary, --keep) runs in readme-demos.test.ts,
// and the Kubernetes demos, on the real node, in demo-kubernetes.test.ts.
describe('npm run demo', () => {
  it('--strategy recreate stops every server, starts them all on v2, and says why requests failed', async () => {
    const env = { ...process.env };
    delete env.TEMPORAL_ADDRESS;
    const args = [
      'run',
      '--silent',
      'demo',
      '--',
      '--strategy',
      'recreate',
      '--servers',
      '3',
      '--rate',
      '50',
      '--json',
    ];
    const { code, stdout, stderr } = await runToEnd('npm', args, { cwd: root, env });
    assert.equal(code, 0, `${stdout}\n${stderr.slice(-3_000)}`);
    const summary = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as Record<string, unknown>;
    assert.equal(summary.strategy, 'recreate');
    assert.equal(summary.onNewVersion, 3);
    assert.equal(summary.phase, 'succeeded');
    assert.match(stdout, /recreate drops the requests that arrive while no server runs, by design/);
  });

  for (const strategy of ['blue-green', 'surge']) {
    it(`--strategy ${strategy} creates a new set of servers, retires the old one, and fails nothing`, async () => {
      const env = { ...process.env };
      delete env.TEMPORAL_ADDRESS;
      const args = ['run', '--silent', 'demo', '--', '--strategy', strategy, '--servers', '3', '--json'];
      const { code, stdout, stderr } = await runToEnd('npm', args, { cwd: root, env });
      assert.equal(code, 0, `${stdout}\n${stderr.slice(-3_000)}`);
      const summary = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as Record<string, unknown>;
      assert.equal(summary.strategy, strategy);
      assert.equal(summary.onNewVersion, 3);
      assert.equal(summary.failed, 0);
      assert.equal(summary.phase, 'succeeded');
      assert.match(stderr, /web-6: done \(v2\)/);
      assert.match(stderr, /web-1: destroyed/);
    });
  }

  it('rejects a bad option with exit code 2 and starts nothing', async () => {
    const { code, stderr } = await runToEnd('npm', ['run', '--silent', 'demo', '--', '--servers', 'many'], {
      cwd: root,
    });
    assert.equal(code, 2);
    assert.match(stderr, /--servers: expected a whole number of at least 1/);
  });
});
