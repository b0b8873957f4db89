import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { loadRolloutSpecFile } from '../../spec';
import { portInUse } from '../../infra/ports';
import { keptDemo, leftAfter } from '../helpers/demo';
import { processesOf, runToEnd } from '../helpers/process';

const root = join(__dirname, '..', '..');

/** The indented lines the kept demo printed under "Try, from …": an export, then each baton command. */
function printedCommands(stderr: string): {
  specFile: string;
  exportLine: string;
  commands: string[];
  ui: string;
} {
  const block = stderr.slice(stderr.indexOf('Try, from'));
  const lines = block
    .split('\n')
    .filter((line) => line.startsWith('  '))
    .map((line) => line.trim());
  const exportLine = lines.find((line) => line.startsWith('export ')) ?? '';
  const ui = (lines.find((line) => line.startsWith('http')) ?? '').split(' ')[0] ?? '';
  const specFile = /The fleet's spec is (\S+)\./.exec(stderr)?.[1] ?? '';
  return { specFile, exportLine, commands: lines.filter((line) => line.startsWith('npx baton')), ui };
}

describe('the kept demo: a playground to drive by hand', () => {
  it('prints the commands of a second rollout, each works as printed, and Ctrl-C leaves nothing', async () => {
    const demo = await keptDemo('npm run --silent demo -- --servers 6 --batch 1 --rate 50 --keep');
    let temporalPort = 0;
    try {
      const { specFile, exportLine, commands, ui } = printedCommands(demo.stderr());
      assert.ok(existsSync(specFile), `the spec file ${specFile} exists`);
      const spec = await loadRolloutSpecFile(specFile);
      assert.equal(spec.target.name, 'demo-web');
      assert.match(exportLine, /^export TEMPORAL_ADDRESS=127\.0\.0\.1:\d+ /);
      temporalPort = Number(/TEMPORAL_ADDRESS=[\d.]+:(\d+)/.exec(exportLine)?.[1]);
      const verbs = commands.map((command) => command.split(' ')[2]);
      assert.deepEqual(verbs, ['start', 'status', 'pause', 'resume', 'abort', 'watch', 'history']);

      // Each line as a user pastes it into a shell, in the project's folder, after the export.
      const results = [];
      for (const command of commands) {
        const done = await runToEnd('bash', ['-c', `${exportLine}\n${command}`], {
          cwd: root,
          env: { ...process.env, NO_COLOR: '1', BATON_OPERATOR: 'playground-test' },
        });
        results.push({ command, ...done });
      }
      const [start, status, pause, resume, abort, watch, history] = results;
      assert.equal(start?.code, 0, start?.stderr);
      assert.match(start?.stdout ?? '', /started rollout\/demo-web \(run [0-9a-f-]+\) to v3/);
      assert.equal(status?.code, 0, status?.stderr);
      assert.match(status?.stdout ?? '', /demo-web/);
      assert.equal(pause?.code, 0, pause?.stderr);
      assert.match(pause?.stdout ?? '', /demo-web: pause accepted/);
      assert.equal(resume?.code, 0, resume?.stderr);
      assert.match(resume?.stdout ?? '', /demo-web: resume accepted/);
      assert.equal(abort?.code, 0, abort?.stderr);
      assert.match(abort?.stdout ?? '', /demo-web: abort accepted/);
      assert.equal(watch?.code, 1, 'watch exits 1: the rollout rolled back');
      assert.match(watch?.stdout ?? '', /demo-web: rolled-back/);
      assert.equal(history?.code, 0, history?.stderr);
      for (const said of ['a closer look', 'trying abort', 'playground-test'])
        assert.ok(history?.stdout.includes(said), `history shows "${said}":\n${history?.stdout}`);

      const page = await fetch(ui);
      assert.equal(page.status, 200, `the UI link ${ui} answers`);
    } finally {
      const left = await leftAfter(demo);
      assert.match(left.code, /^(130|SIGINT)$/, demo.stderr().slice(-2_000));
      assert.deepEqual(left.running, [], 'nothing the demo or its rollouts started is running');
      assert.deepEqual(left.folders, [], "the demo's folder is gone");
      assert.equal(await portInUse(temporalPort), false, "the demo's Temporal server stopped");
    }
  });

  for (const strategy of ['recreate', 'blue-green', 'canary', 'surge']) {
    it(`Ctrl-C on a kept ${strategy} demo stops every server it started or created, and its folder goes`, async () => {
      const demo = await keptDemo(
        `npm run --silent demo -- --strategy ${strategy} --servers 3 --rate 50 --keep`,
      );
      const { specFile } = printedCommands(demo.stderr());
      assert.ok(existsSync(specFile), `the spec file ${specFile} exists`);
      assert.ok(processesOf(demo.tmp).length >= 5, 'HAProxy, servers and Temporal ran before the signal');
      const left = await leftAfter(demo);
      assert.match(left.code, /^(130|SIGINT)$/, demo.stderr().slice(-2_000));
      assert.deepEqual(left.running, []);
      assert.deepEqual(left.folders, []);
      assert.equal(existsSync(dirname(specFile)), false);
    });
  }
});
