import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { sweepFleets } from '../infra/fleet/local-fleet';
import { installComponents } from '../infra/install';
import { onInterrupt } from '../infra/interrupt';
import { delay, sendSignal, stopProcessTree } from '../infra/processes';
import { sweepClusters } from '../infra/kubernetes-cluster';
import type { TemporalDevServer } from '../infra/temporal-server';
import { startTemporalDevServer } from '../infra/temporal-server';
import { bundleWorkflowCode } from '@temporalio/worker';
import { prebuiltBundleVariable, workflowsPath } from '../worker/create-worker';
import { processesWhere } from './helpers/process';
import { quietBundlerLogger } from './helpers/temporal';

/**
 * `npm test`: typecheck, lint and format check while the real components install, then every test file under
 * test/ with node's test runner, against real Temporal dev servers started here and stopped at the end
 * whatever happens. Arguments filter test files by path: `npm test -- test/unit` or `npm test -- haproxy`.
 */
const root = join(__dirname, '..');
const bin = (name: string) => join(root, 'node_modules', '.bin', name);

/**
 * Test files that run one after the other in a lane of their own, beside the others, on a Temporal dev server of
 * their own:
 * - those that start this machine's one real Kubernetes node (kubelet, containerd, kube-proxy own the host's
 *   network), instead of waiting for the node inside a test's own deadline;
 * - readme.test.ts: README.md's commands name the rollout `web`, which no file of the other lane can then meet;
 * - two long files that need neither, so that the lanes end together: a warm run measured the real node's files
 *   at 15 minutes in turn and the rest at 24 minutes two at a time.
 */
const serialFiles = [
  'test/integration/demo-playground.test.ts',
  'test/integration/demo-kubernetes.test.ts',
  'test/integration/kubernetes-real-pods.test.ts',
  'test/integration/readme.test.ts',
  'test/integration/readme-demos.test.ts',
  'test/integration/cli.test.ts',
];

/** Test files run at once beside the serial lane: most of a test's time is a rollout waiting. */
const concurrency = Number(process.env.BATON_TEST_CONCURRENCY ?? 2);

/** Marks every process a test run starts, at any depth, so that the sweep at the end finds what a test left. */
const runMarker = 'BATON_TEST_RUN';

/** Passes a child's output on whole lines at a time, so that two lanes' lines never mix mid-line. */
function lineByLine(output: NodeJS.ReadableStream, onLine: (line: string) => void): Promise<void> {
  let partial = '';
  output.setEncoding('utf8');
  output.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) onLine(line);
  });
  return new Promise((resolve) =>
    output.on('end', () => {
      if (partial !== '') onLine(partial);
      resolve();
    }),
  );
}

interface Outcome {
  readonly code: number;
  /** node's test runner's own closing figures ("ℹ pass 12"), when it printed them. */
  readonly figures: Map<string, number>;
}

function run(label: string, argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<Outcome> {
  process.stdout.write(`\n▶ ${label}\n`);
  const [program, ...args] = argv;
  return new Promise((resolve) => {
    const child = spawn(program, args, { cwd: root, env, stdio: ['inherit', 'pipe', 'inherit'] });
    const figures = new Map<string, number>();
    const printed = lineByLine(child.stdout, (line) => {
      const figure = /^ℹ (tests|pass|fail|skipped|todo|cancelled) (\d+)$/.exec(line);
      if (figure) figures.set(figure[1], Number(figure[2]));
      process.stdout.write(`${line}\n`);
    });
    // Interrupted, the runner ends the tests, down to each test file's process, before it stops the server they
    // use; left alone they would go on.
    const stop = onInterrupt(() => stopProcessTree(child));
    child.on('close', (code, signal) => {
      void Promise.all([stop(), printed]).then(() => resolve({ code: code ?? (signal ? 1 : 0), figures }));
    });
  });
}

function testFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return testFiles(path);
    return entry.endsWith('.test.ts') ? [relative(root, path)] : [];
  });
}

/** The processes that carry this run's marker: started by a test, and still running. */
function markedProcesses(marker: string): Array<{ pid: number; commandLine: string }> {
  return processesWhere(
    ({ commandLine, environment }) =>
      commandLine.trim() !== '' && environment.includes(`${runMarker}=${marker}\0`),
  ).map(({ pid, commandLine }) => ({ pid, commandLine: commandLine.trim() }));
}

/**
 * What the tests left running: fleets and clusters in the run's folder, stopped as they are meant to be, then any
 * other process with the run's marker (a kept demo, a worker), killed. Each is named: a test must stop what it
 * starts, whatever fails, so anything found here fails the run.
 */
async function sweepLeftovers(fleetsDir: string, marker: string): Promise<string[]> {
  const left: string[] = [];
  const fleets = await sweepFleets(fleetsDir);
  if (fleets > 0) left.push(`${fleets} test fleets`);
  const clusters = await sweepClusters(fleetsDir);
  if (clusters > 0) left.push(`${clusters} test clusters`);
  const processes = markedProcesses(marker);
  for (const { pid } of processes) sendSignal(pid, 'SIGTERM');
  if (processes.length > 0) await delay(3_000);
  for (const { pid } of markedProcesses(marker)) sendSignal(pid, 'SIGKILL');
  left.push(...processes.map(({ pid, commandLine }) => `process ${pid}: ${commandLine.slice(0, 200)}`));
  return left;
}

async function main(): Promise<number> {
  const filters = process.argv.slice(2);
  const files = testFiles(join(root, 'test')).filter(
    (f) => filters.length === 0 || filters.some((x) => f.includes(x)),
  );
  if (files.length === 0) {
    process.stderr.write(`no test file matches ${filters.join(' ')}\n`);
    return 2;
  }
  // Every real component any test uses installs before the first test starts (test files run side by side, and
  // two installs at once would fight over Debian's dpkg lock or build the same program twice), and while the
  // checks run: on a new machine the builds take most of the time.
  const installing = installComponents();
  installing.catch(() => undefined);
  if (filters.length === 0) {
    if ((await run('typecheck', [bin('tsc'), '-p', '.'])).code !== 0) return 1;
    if ((await run('lint', [bin('eslint'), '--max-warnings=0', '.'])).code !== 0) return 1;
    if ((await run('format', [bin('prettier'), '--check', '--log-level=warn', '.'])).code !== 0) return 1;
  }
  process.stdout.write('\n▶ real components\n');
  const started = Date.now();
  for (const line of await installing) process.stdout.write(`  ${line}\n`);
  process.stdout.write(`  (ready ${Math.round((Date.now() - started) / 1000)} s after the checks)\n`);

  const dir = await mkdtemp(join(tmpdir(), 'baton-test-'));
  // A Temporal dev server per lane: rollouts are named by their target ("rollout/web"), and two lanes' files that
  // name the same target would otherwise find each other's rollout running.
  process.stdout.write('\n▶ starting a real Temporal dev server for each lane\n');
  const servers = await Promise.all(
    ['lane', 'serial-lane'].map((lane) =>
      startTemporalDevServer({
        dbFile: join(dir, lane, 'temporal.db'),
        logFile: join(dir, lane, 'temporal.log'),
        namespace: 'baton-test',
      }),
    ),
  );
  const [server, serialServer] = servers as [TemporalDevServer, TemporalDevServer];
  for (const s of servers) process.stdout.write(`  ${s.address} (UI ${s.uiUrl})\n`);
  // One workflow bundle for every test file and every worker process they start, instead of one each.
  const bundle = join(dir, 'workflow-bundle.js');
  const { code, sourceMap } = await bundleWorkflowCode({ workflowsPath, logger: quietBundlerLogger });
  await writeFile(bundle, code);
  await writeFile(`${bundle}.map`, sourceMap);
  const fleetsDir = join(dir, 'fleets');
  const marker = dir;
  let left: string[] = [];
  const stop = onInterrupt(async () => {
    left = await sweepLeftovers(fleetsDir, marker);
    await Promise.all(servers.map((s) => s.stop()));
    await rm(dir, { recursive: true, force: true });
  });
  const env = {
    ...process.env,
    BATON_TEST_TEMPORAL_ADDRESS: server.address,
    BATON_TEST_TEMPORAL_NAMESPACE: server.namespace,
    BATON_TEST_TEMPORAL_UI: server.uiUrl,
    // Where test fleets and clusters go, so that the sweep at the end finds what a crashed test left running.
    BATON_TEST_FLEETS_DIR: fleetsDir,
    [runMarker]: marker,
    [prebuiltBundleVariable]: bundle,
  };
  const nodeTest = (lane: string[], at: number) => [
    process.execPath,
    '--import',
    'tsx',
    '--test',
    '--test-reporter=spec',
    `--test-concurrency=${at}`,
    ...lane,
  ];
  const serialLane = files.filter((f) => serialFiles.includes(f));
  const otherLane = files.filter((f) => !serialFiles.includes(f));
  let outcomes: Outcome[] = [];
  try {
    outcomes = await Promise.all([
      ...(otherLane.length > 0
        ? [run(`${otherLane.length} test files`, nodeTest(otherLane, concurrency), env)]
        : []),
      ...(serialLane.length > 0
        ? [
            run(`${serialLane.length} test files in turn`, nodeTest(serialLane, 1), {
              ...env,
              BATON_TEST_TEMPORAL_ADDRESS: serialServer.address,
              BATON_TEST_TEMPORAL_UI: serialServer.uiUrl,
            }),
          ]
        : []),
    ]);
  } finally {
    await stop();
  }
  const sum = (figure: string) => outcomes.reduce((total, o) => total + (o.figures.get(figure) ?? 0), 0);
  if (left.length > 0) {
    process.stdout.write(
      `\n✖ the tests left these running (swept now):\n${left.map((l) => `  ${l}\n`).join('')}`,
    );
  }
  process.stdout.write(
    `\ntests: ${sum('pass')} passed, ${sum('fail') + sum('cancelled')} failed, ${sum('skipped') + sum('todo')} skipped\n`,
  );
  return outcomes.some((o) => o.code !== 0) || left.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${String((error as Error)?.stack ?? error)}\n`);
    process.exit(1);
  },
);
