import assert from 'node:assert/strict';
import { runToEnd } from '../helpers/process';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const root = join(__dirname, '..', '..');

describe('npm run demo', () => {
  it('starts Temporal, HAProxy and the fleet, rolls v1 to v2 under load, fails nothing, and cleans up', async () => {
    // Run it as a new user does, with no Temporal address: the demo starts its own dev server.
    const env = { ...process.env };
    delete env.TEMPORAL_ADDRESS;
    const demoArgs = [
      'run',
      '--silent',
      'demo',
      '--',
      '--servers',
      '4',
      '--batch',
      '2',
      '--rate',
      '80',
      '--json',
    ];
    const { code, stdout, stderr } = await runToEnd('npm', demoArgs, { cwd: root, env });
    assert.equal(code, 0, `${stdout}\n${stderr.slice(-3_000)}`);
    const last = stdout.trim().split('\n').at(-1) ?? '';
    const summary = JSON.parse(last) as Record<string, unknown>;
    assert.deepEqual(Object.keys(summary).slice(0, 7), [
      'strategy',
      'servers',
      'onNewVersion',
      'sent',
      'failed',
      'durationS',
      'uiUrl',
    ]);
    assert.equal(summary.servers, 4);
    assert.equal(summary.onNewVersion, 4);
    assert.equal(summary.failed, 0);
    assert.ok((summary.sent as number) > 100);
    assert.match(
      summary.uiUrl as string,
      /^http:\/\/127\.0\.0\.1:\d+\/namespaces\/default\/workflows\/rollout%2Fdemo-web\/[0-9a-f-]+\/history$/,
    );
    assert.match(stderr, /demo-web: succeeded/);
  });

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

  it('--strategy canary analyses a canary on real traffic, promotes it, and fails nothing', async () => {
    const env = { ...process.env };
    delete env.TEMPORAL_ADDRESS;
    const args = ['run', '--silent', 'demo', '--', '--strategy', 'canary', '--servers', '4', '--json'];
    const { code, stdout, stderr } = await runToEnd('npm', args, { cwd: root, env });
    assert.equal(code, 0, `${stdout}\n${stderr.slice(-3_000)}`);
    const summary = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as Record<string, unknown>;
    assert.equal(summary.strategy, 'canary');
    assert.equal(summary.onNewVersion, 4);
    assert.equal(summary.failed, 0);
    assert.equal(summary.phase, 'succeeded');
    assert.match(stderr, /analysis 2 passed: canary \d+ req, 0% 5xx/);
    assert.match(stderr, /analysis 4 passed/);
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
