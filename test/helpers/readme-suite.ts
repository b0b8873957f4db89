import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hostVersions } from '../../infra/fleet/hosts';
import type { LocalFleet } from '../../infra/fleet/local-fleet';
import { listRollouts, startRollout } from '../../client/rollouts';
import { loadRolloutSpecFile } from '../../spec';
import type { RolloutStatus } from '../../workflows/messages';
import { abortUpdate, pauseUpdate, statusQuery } from '../../workflows/messages';
import { keptDemo, leftAfter } from '../helpers/demo';
import { startTestFleet } from '../helpers/fleet';
import type { Finished } from '../helpers/process';
import { runToEnd } from '../helpers/process';
import { readmeCommands } from '../helpers/readme';
import { until } from '../helpers/rollout';
import type { TestTemporal } from '../helpers/temporal';
import { connectTestTemporal, uniqueTaskQueue } from '../helpers/temporal';
import type { WorkerProcess } from '../helpers/worker';
import { startWorkerProcess } from '../helpers/worker';

/**
 * Every command README.md shows in a ```sh block, run as written, each checked against what the text beside it
 * says. A command with no expectation here fails the test, and so does an expectation whose command left
 * README.md: the test follows the text. Two test files run its parts: the demos that bring their own Temporal and
 * fleet (readme-demos.test.ts, beside the other tests), and the rest (readme.test.ts, on the real node's lane,
 * whose Temporal server no other file shares: its commands name the rollout `web`).
 */
const root = join(__dirname, '..', '..');

/** A command without its trailing comment: what the shell runs. */
const commandPart = (line: string) => line.replace(/\s+#\s.*$/, '').trim();

interface Context {
  readonly env: NodeJS.ProcessEnv;
  readonly fleet: LocalFleet;
  readonly temporal: TestTemporal;
  /** Where the fleet's spec goes instead of ./rollout.yaml, so that no test writes into the clone. */
  readonly specFile: string;
  /** Stand-ins for what README.md can only name: the user's admin socket, deploy command and spec file. */
  readonly substitutions: ReadonlyArray<readonly [string, string]>;
  worker?: WorkerProcess;
}

type Expectation =
  | { readonly notRunHere: string }
  | {
      /** What must hold before the line runs (a rollout to steer, a pause to lift). */
      readonly before?: (context: Context) => Promise<void>;
      readonly check: (run: Finished, context: Context) => void | Promise<void>;
      /** The line needs no fleet: it runs as a new user runs it, with no Temporal address set. */
      readonly standalone?: boolean;
      /** The line starts its own Temporal, fleet or cluster, and shares nothing with the other lines. */
      readonly ownStack?: boolean;
    }
  | {
      readonly background: (line: string, context: Context) => Promise<void>;
      readonly ownStack?: boolean;
    };

const demoSucceeded =
  (servers: number, more: (run: Finished) => void = () => undefined, units = 'servers') =>
  (run: Finished) => {
    assert.equal(run.code, 0, run.stderr.slice(-3_000));
    assert.match(run.stdout, new RegExp(`rollout succeeded: ${servers} of ${servers} ${units} on v2`));
    assert.match(run.stdout, /requests: [1-9]\d* sent, 0 failed/);
    more(run);
  };

const status = (context: Context) =>
  context.temporal.client.workflow.getHandle('rollout/web').query(statusQuery);

/** Starts a rollout of the fleet to v3 (as `baton start --detach` would) and waits until it moves. */
async function rollingToV3(context: Context): Promise<void> {
  const spec = await loadRolloutSpecFile(context.specFile, { version: 'v3' });
  assert.ok(spec.strategy.type === 'rolling');
  // Time between batches, so that each command finds the rollout still going.
  spec.strategy = { ...spec.strategy, pauseBetweenBatches: 2_000 };
  await startRollout(context.temporal.client, spec, {
    taskQueue: context.env.BATON_TASK_QUEUE ?? '',
    startedBy: { by: 'readme-test', via: 'start' },
  });
  await until(async () => (await status(context)).phase === 'progressing');
}

const pauseFirst = async (context: Context) => {
  await context.temporal.client.workflow
    .getHandle('rollout/web')
    .executeUpdate(pauseUpdate, { args: [{ by: 'readme-test', reason: 'set up' }] });
};

/** The rollout the line followed succeeded, and every server of the fleet runs `version`. */
const everyServerOn = (version: string) => async (run: Finished, context: Context) => {
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, new RegExp(`web: succeeded, 6 servers on ${version}`));
  assert.deepEqual(new Set(Object.values(await hostVersions(context.fleet.dir))), new Set([version]));
};

const accepted = (verb: string) => (run: Finished) => {
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, new RegExp(`^web: ${verb} accepted`));
};

export const expectations: Record<string, Expectation> = {
  'npm run demo': { standalone: true, ownStack: true, check: demoSucceeded(9) },
  'npm test': { notRunHere: 'it is the command running this test' },
  'npm run demo -- --servers 5 --batch 1 --rate 300': {
    standalone: true,
    ownStack: true,
    check: demoSucceeded(5),
  },
  'npm run demo -- --json': {
    standalone: true,
    ownStack: true,
    check: demoSucceeded(9, (run) => {
      const summary = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '') as Record<string, unknown>;
      assert.equal(summary.phase, 'succeeded');
      assert.equal(summary.failed, 0);
    }),
  },
  'npm run demo -- --strategy canary': {
    standalone: true,
    ownStack: true,
    check: demoSucceeded(9, (run) => {
      assert.match(run.stderr, /analysis 2 passed: canary \d+ req, 0% 5xx/);
      assert.match(run.stderr, /analysis 4 passed/);
    }),
  },
  'npm run demo -- --target kubernetes --servers 4': {
    standalone: true,
    check: demoSucceeded(
      4,
      (run) =>
        assert.match(
          run.stderr,
          /real node baton-node-0 is Ready[\s\S]*through the Service at http:\/\/10\./,
        ),
      'pods',
    ),
  },
  'npm run demo -- --keep': {
    ownStack: true,
    background: async (line) => {
      const demo = await keptDemo(line);
      assert.match(demo.stderr(), /The fleet's spec is \S+rollout\.yaml/);
      const left = await leftAfter(demo);
      assert.deepEqual(left.running, [], 'Ctrl-C stops everything');
      assert.deepEqual(left.folders, []);
    },
  },
  'npx baton init fleet --socket /run/haproxy/admin.sock --backend web -f rollout.yaml -- /usr/local/bin/deploy-web {name} {version}':
    {
      check: async (run, context) => {
        assert.equal(run.code, 0, run.stderr);
        const spec = await loadRolloutSpecFile(context.specFile);
        assert.equal(spec.version, 'v1');
        assert.ok(spec.target.kind === 'fleet');
        assert.equal(spec.target.servers.length, context.fleet.servers.length);
      },
    },
  'temporal operator namespace create --namespace baton --retention 720h': {
    notRunHere: 'temporal-cluster.test.ts runs it against the Temporal server on PostgreSQL with mutual TLS',
  },
  'temporal operator search-attribute create --namespace baton --name BatonTarget --type Keyword --name BatonStrategy --type Keyword --name BatonPhase --type Keyword --name BatonFromVersion --type Keyword --name BatonToVersion --type Keyword':
    {
      notRunHere:
        'temporal-cluster.test.ts runs it against the Temporal server on PostgreSQL with mutual TLS',
    },
  'npm run worker': {
    background: async (line, context) => {
      context.worker = await startWorkerProcess(context.env, line);
    },
  },
  'npx baton start -f rollout.yaml --version v2': {
    check: everyServerOn('v2'),
  },
  'npx baton status web -o json': {
    check: (run) => {
      assert.equal(run.code, 0, run.stderr);
      assert.equal((JSON.parse(run.stdout) as RolloutStatus).phase, 'succeeded');
    },
  },
  'npx baton pause web --reason "error rate up"': { before: rollingToV3, check: accepted('pause') },
  'npx baton resume web': { check: accepted('resume') },
  'npx baton promote web': { before: pauseFirst, check: accepted('promote') },
  'npx baton abort web --reason "bad build"': { before: pauseFirst, check: accepted('abort') },
  'npx baton watch web': {
    check: (run) => {
      assert.equal(run.code, 1, 'exit 1: rolled back');
      assert.match(run.stdout, /web: rolled-back: aborted by readme-operator: bad build/);
    },
  },
  'npx baton list --phase paused': {
    before: async (context) => {
      await rollingToV3(context);
      await pauseFirst(context);
      // The list reads search attributes, which the server indexes a moment after the rollout sets them.
      await until(async () =>
        (await listRollouts(context.temporal.client, { phase: 'paused', limit: 20 })).some(
          (r) => r.target === 'web',
        ),
      );
    },
    check: async (run, context) => {
      assert.equal(run.code, 0, run.stderr);
      // The search attributes the list reads are updated as the rollout moves, a moment after the pause.
      assert.match(run.stdout, /^web\s+rolling\s+paused\s+v2 → v3/m);
      const handle = context.temporal.client.workflow.getHandle('rollout/web');
      await handle.executeUpdate(abortUpdate, { args: [{ by: 'readme-test', reason: 'listed' }] });
      await handle.result();
    },
  },
  'npx baton history web': {
    check: (run) => {
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /started by readme-test/);
      assert.match(run.stdout, /abort by readme-test: listed/);
      assert.match(run.stdout, /finished\s+rolled-back/);
    },
  },
  'npx baton retry web': {
    check: everyServerOn('v3'),
  },
  'npx baton undo web': {
    check: everyServerOn('v2'),
  },
  'eval "$(npx baton completion bash)"': {
    check: (run) => {
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /^complete .*-F \S+ baton$/m, 'baton has a completion function');
    },
  },
  'docker compose up -d --build': {
    notRunHere: 'no Docker engine runs here; compose.test.ts checks the file',
  },
  'TEMPORAL_ADDRESS=localhost:7233 npx baton start -f examples/fleet-compose.yaml': {
    notRunHere: 'it needs the compose stack up',
  },
  'export TEMPORAL_ADDRESS=my-ns.a1b2c.tmprl.cloud:7233 TEMPORAL_NAMESPACE=my-ns.a1b2c TEMPORAL_API_KEY="$(cat /run/secrets/temporal-api-key)"':
    { notRunHere: 'it needs a Temporal Cloud namespace' },
  'export TEMPORAL_ADDRESS=temporal.internal:7233 TEMPORAL_TLS_CLIENT_CERT_PATH=/etc/baton/tls/client.pem TEMPORAL_TLS_CLIENT_KEY_PATH=/etc/baton/tls/client.key TEMPORAL_TLS_SERVER_CA_CERT_PATH=/etc/baton/tls/ca.pem TEMPORAL_TLS_SERVER_NAME=temporal.internal':
    { notRunHere: 'it needs a Temporal cluster with mutual TLS' },
};

/** Runs `line` in bash in the project's folder, with README.md's stand-ins replaced. */
function runLine(line: string, context: Context | undefined): Promise<Finished> {
  let text = line;
  for (const [from, to] of context?.substitutions ?? []) text = text.replaceAll(from, to);
  // With the completion loaded, print what bash would complete with.
  if (text.startsWith('eval ')) text = `${text}\ncomplete -p baton`;
  const env: NodeJS.ProcessEnv = context
    ? { ...context.env, BATON_OPERATOR: 'readme-operator', NO_COLOR: '1' }
    : { ...process.env, NO_COLOR: '1' };
  if (!context) delete env.TEMPORAL_ADDRESS;
  return runToEnd('bash', ['-c', text], { cwd: root, env });
}

const commands = readmeCommands(readFileSync(join(root, 'README.md'), 'utf8'));

/**
 * README.md's commands, run as written: those that start their own stack (`ownStack`), or all the others. The part
 * with the others also checks that every command README.md shows has an expectation here.
 */
export function describeReadme(part: 'own stacks' | 'the rest'): void {
  const inPart = (expectation: Expectation) =>
    (part === 'own stacks') === ('ownStack' in expectation && expectation.ownStack === true);
  describe(`README.md, as written: ${part === 'own stacks' ? 'the demos with a stack of their own' : 'the rest'}`, () => {
    if (part === 'the rest')
      it('has an expectation for every command it shows, and shows every command expected', () => {
        const shown = new Set(commands.map(commandPart));
        assert.deepEqual(
          [...shown].filter((command) => !(command in expectations)),
          [],
          'README.md shows commands this test does not know: say here what each does',
        );
        assert.deepEqual(
          Object.keys(expectations).filter((command) => !shown.has(command)),
          [],
          'expectations for commands README.md no longer shows',
        );
      });

    if (part === 'the rest')
      it('names why each command it does not run cannot run here', (t) => {
        for (const [command, expectation] of Object.entries(expectations))
          if ('notRunHere' in expectation) {
            assert.ok(expectation.notRunHere.length > 10);
            t.diagnostic(`not run here: ${command} (${expectation.notRunHere})`);
          }
      });

    let dir: string;
    let context: Context;
    if (part === 'the rest') {
      before(async () => {
        dir = await mkdtemp(join(tmpdir(), 'baton-readme-'));
        const temporal = await connectTestTemporal();
        const fleet = await startTestFleet({ servers: 6, version: 'v1' });
        const specFile = join(dir, 'rollout.yaml');
        context = {
          temporal,
          fleet,
          specFile,
          env: {
            ...process.env,
            TEMPORAL_ADDRESS: temporal.address,
            TEMPORAL_NAMESPACE: temporal.namespace,
            BATON_TASK_QUEUE: uniqueTaskQueue('readme'),
          },
          substitutions: [
            ['/run/haproxy/admin.sock', fleet.haproxy.socket],
            ['/usr/local/bin/deploy-web {name} {version}', fleet.upgradeArgv.join(' ')],
            ['-f rollout.yaml', `-f ${specFile}`],
          ],
        };
      });
      after(async () => {
        await context.worker?.stop();
        await context.fleet.stop();
        await context.temporal.close();
        await rm(dir, { recursive: true, force: true });
      });
    }

    const seen = new Set<string>();
    for (const line of commands) {
      const command = commandPart(line);
      if (seen.has(command)) continue;
      seen.add(command);
      const expectation = expectations[command];
      if (!expectation || 'notRunHere' in expectation || !inPart(expectation)) continue;
      it(line, async () => {
        if ('background' in expectation) return expectation.background(line, context);
        await expectation.before?.(context);
        const run = await runLine(line, expectation.standalone ? undefined : context);
        await expectation.check(run, context);
      });
    }
  });
}
