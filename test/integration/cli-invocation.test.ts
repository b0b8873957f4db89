import assert from 'node:assert/strict';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import packageJson from '../../package.json';
import { runToEnd } from '../helpers/process';

const root = join(__dirname, '..', '..');
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'baton-invocation-'));
});
after(() => rm(dir, { recursive: true, force: true }));

/** Nothing listens here: a verb that needs Temporal must say it can't reach it, never exit 0 silently. */
const env = { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1', NO_COLOR: '1' };

type Invocation = (args: string[]) => Promise<{ code: number | null; stdout: string; stderr: string }>;

/** Every way a user reaches the CLI; each must run it, whatever argv[1] is spelled like. */
const invocations: Record<string, () => Invocation | Promise<Invocation>> = {
  'npx baton (in the project)': () => (args) => runToEnd('npx', ['baton', ...args], { cwd: root, env }),
  'npm run baton --': () => (args) =>
    runToEnd('npm', ['run', '--silent', 'baton', '--', ...args], { cwd: root, env }),
  'node bin/baton.js': () => (args) =>
    runToEnd(process.execPath, [join(root, 'bin', 'baton.js'), ...args], { cwd: root, env }),
  'npm install -g .': async () => {
    const prefix = join(dir, 'global');
    const installed = await runToEnd(
      'npm',
      ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '.'],
      {
        cwd: root,
        env,
      },
    );
    assert.equal(installed.code, 0, installed.stderr);
    return (args) => runToEnd(join(prefix, 'bin', 'baton'), args, { cwd: dir, env });
  },
  'npm link': async () => {
    const prefix = join(dir, 'linked');
    const linked = await runToEnd('npm', ['link', '--no-audit', '--no-fund'], {
      cwd: root,
      env: { ...env, npm_config_prefix: prefix },
    });
    assert.equal(linked.code, 0, linked.stderr);
    return (args) => runToEnd(join(prefix, 'bin', 'baton'), args, { cwd: dir, env });
  },
  'a symlink to the bin': async () => {
    const link = join(dir, 'my-baton');
    await symlink(join(root, 'bin', 'baton.js'), link);
    return (args) => runToEnd(link, args, { cwd: dir, env });
  },
};

describe('the baton command runs however it is invoked', () => {
  for (const [how, make] of Object.entries(invocations)) {
    it(`${how}: --help and --version print, a verb needing Temporal fails loudly, bad input exits 2`, async () => {
      const baton = await make();
      const help = await baton(['--help']);
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.stdout, /Usage: baton/);
      assert.match(help.stdout, /start \[options\]/);

      const version = await baton(['--version']);
      assert.equal(version.code, 0, version.stderr);
      assert.equal(version.stdout.trim(), packageJson.version);

      const status = await baton(['status', 'web']);
      assert.equal(status.code, 1, 'not 0: nothing was shown');
      assert.match(status.stderr, /cannot reach Temporal at 127\.0\.0\.1:1/);

      const start = await baton(['start', '-f', join(dir, 'no-such-rollout.yaml')]);
      assert.equal(start.code, 2);
      assert.match(start.stderr, /no-such-rollout.yaml .*\n.*expected a readable file: ENOENT/);

      const unknown = await baton(['strat']);
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr, /unknown command 'strat'/);
    });
  }
});

describe('an entry point that runs nothing', () => {
  it('exits non-zero with a message, never 0, when the command never finishes', async () => {
    const { code, stderr } = await runToEnd(
      process.execPath,
      [
        '-r',
        join(root, 'test', 'helpers', 'cli-never-settles.js'),
        join(root, 'bin', 'baton.js'),
        'status',
        'web',
      ],
      { cwd: root, env },
    );
    assert.equal(code, 70);
    assert.match(stderr, /the command ended before it finished; nothing was confirmed/);
  });
});
