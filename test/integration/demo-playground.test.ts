import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { loadRolloutSpecFile } from '../../spec';
import { portInUse } from '../../infra/ports';
import type { KeptDemo } from '../helpers/demo';
import { keptDemo, leftAfter, withKeptDemo } from '../helpers/demo';
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
  const specFile = /The (?:fleet|app)'s spec is (\S+)\./.exec(stderr)?.[1] ?? '';
  return { specFile, exportLine, commands: lines.filter((line) => line.startsWith('npx baton')), ui };
}

/**
 * Runs each baton command a kept demo printed, as a user pastes it into a shell in the project's folder after the
 * export, and checks what each says: a second rollout started, paused, resumed, aborted and rolled back.
 */
async function drivePrintedCommands(demo: KeptDemo): Promise<{ temporalPort: number }> {
  const { specFile, exportLine, commands, ui } = printedCommands(demo.stderr());
  assert.ok(existsSync(specFile), `the spec file ${specFile} exists`);
  const spec = await loadRolloutSpecFile(specFile);
  assert.equal(spec.target.name, 'demo-web');
  assert.match(exportLine, /^export TEMPORAL_ADDRESS=127\.0\.0\.1:\d+ /);
  const temporalPort = Number(/TEMPORAL_ADDRESS=[\d.]+:(\d+)/.exec(exportLine)?.[1]);
  const verbs = commands.map((command) => command.split(' ')[2]);
  assert.deepEqual(verbs, ['start', 'status', 'pause', 'resume', 'abort', 'watch', 'history']);

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
  return { temporalPort };
}

describe('the kept demo: a playground to drive by hand', () => {
  it('prints the commands of a second rollout, each works as printed, and Ctrl-C leaves nothing', async () => {
    const demo = await keptDemo('npm run --silent demo -- --servers 6 --batch 1 --rate 50 --keep');
    let temporalPort = 0;
    try {
      ({ temporalPort } = await drivePrintedCommands(demo));
    } finally {
      const left = await leftAfter(demo);
      assert.match(left.code, /^(130|SIGINT)$/, demo.stderr().slice(-2_000));
      assert.deepEqual(left.running, [], 'nothing the demo or its rollouts started is running');
      assert.deepEqual(left.folders, [], "the demo's folder is gone");
      assert.equal(await portInUse(temporalPort), false, "the demo's Temporal server stopped");
    }
  });

  it('on Kubernetes: the commands work as printed on the kept pods, and Ctrl-C stops the real node', async () => {
    const demo = await keptDemo('npm run --silent demo -- --target kubernetes --servers 3 --rate 50 --keep');
    let temporalPort = 0;
    try {
      assert.match(
        demo.stderr(),
        /kept running: Kubernetes with kubeconfig \S+, the Service at http:\/\/10\./,
      );
      ({ temporalPort } = await drivePrintedCommands(demo));
      const kubectl = /^ {2}(\S+kubectl --kubeconfig \S+ get deployments,pods -o wide)/m.exec(
        demo.stderr(),
      )?.[1];
      assert.ok(kubectl, `the kept demo prints a kubectl command: ${demo.stderr()}`);
      const pods = await runToEnd('bash', ['-c', kubectl], { cwd: root });
      assert.equal(pods.code, 0, pods.stderr);
      assert.match(pods.stdout, /deployment\.apps\/web /);
      assert.equal(
        (pods.stdout.match(/^pod\/web-(?!v3-)\S+ +1\/1 +Running/gm) ?? []).length,
        3,
        `three pods of web serve again after the abort:\n${pods.stdout}`,
      );
    } finally {
      const left = await leftAfter(demo);
      assert.match(left.code, /^(130|SIGINT)$/, demo.stderr().slice(-2_000));
      assert.deepEqual(left.running, [], 'nothing the demo started is running: not kubelet, nor a container');
      assert.deepEqual(left.folders, [], "the demo's folder is gone");
      assert.equal(await portInUse(temporalPort), false, "the demo's Temporal server stopped");
    }
  });

  for (const strategy of ['recreate', 'blue-green', 'canary', 'surge']) {
    it(`Ctrl-C on a kept ${strategy} demo stops every server it started or created, and its folder goes`, async () => {
      const { value: specFile, left } = await withKeptDemo(
        `npm run --silent demo -- --strategy ${strategy} --servers 3 --rate 50 --keep`,
        (demo) => {
          const { specFile } = printedCommands(demo.stderr());
          assert.ok(existsSync(specFile), `the spec file ${specFile} exists`);
          assert.ok(processesOf(demo.tmp).length >= 5, 'HAProxy, servers and Temporal ran before the signal');
          return Promise.resolve(specFile);
        },
      );
      assert.match(left.code, /^(130|SIGINT)$/);
      assert.deepEqual(left.running, []);
      assert.deepEqual(left.folders, []);
      assert.equal(existsSync(dirname(specFile)), false);
    });
  }

  it('a test that fails after its demo started stops the demo: no process, no folder', async () => {
    let tmp = '';
    let serving = 0;
    await assert.rejects(
      withKeptDemo('npm run --silent demo -- --servers 2 --rate 10 --keep', (demo) => {
        tmp = demo.tmp;
        serving = processesOf(demo.tmp).length;
        return Promise.reject(new Error('made to fail'));
      }),
      /made to fail/,
    );
    assert.ok(serving >= 4, `HAProxy, servers and Temporal ran before the failure: ${serving}`);
    assert.deepEqual(processesOf(tmp), [], 'nothing of the demo runs');
    assert.equal(existsSync(tmp), false, "the demo's folder is gone");
  });

  it('a demo that is not kept in time is stopped before the test fails', async () => {
    let tmp = '';
    await assert.rejects(
      withKeptDemo('echo "$TMPDIR" >&2; sleep 300', () => Promise.resolve(), 2_000).catch((error: Error) => {
        tmp = /(\/\S*baton-playground-[^\s/]+)/.exec(error.message)?.[1] ?? '';
        throw error;
      }),
      /the demo was not kept within 2 s/,
    );
    assert.notEqual(tmp, '', 'the demo said where it ran');
    assert.deepEqual(processesOf(tmp), [], 'its sleep was stopped');
    assert.equal(existsSync(tmp), false, 'its folder is gone');
  });
});
