import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { ensureComposeCheck, ensureKubernetesBinaries, ensureTemporalCli } from '../infra/components';
import { sweepFleets } from '../infra/fleet/local-fleet';
import { ensureChromium } from '../infra/debian';
import { ensureHaproxy } from '../infra/haproxy';
import { onInterrupt } from '../infra/interrupt';
import { stopProcessTree } from '../infra/processes';
import { sweepClusters } from '../infra/kubernetes-cluster';
import { ensureTemporalServer } from '../infra/temporal-cluster';
import { ensurePostgres } from '../infra/postgres';
import { startTemporalDevServer } from '../infra/temporal-server';

/**
 * `npm test`: typecheck, lint and format check, then every test file under test/ with node's test runner,
 * against one real Temporal dev server started here and stopped at the end whatever happens.
 * Arguments filter test files by path: `npm test -- test/unit` or `npm test -- haproxy`.
 */
const root = join(__dirname, '..');
const bin = (name: string) => join(root, 'node_modules', '.bin', name);

function run(label: string, argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  process.stdout.write(`\n▶ ${label}\n`);
  const [program, ...args] = argv;
  return new Promise((resolve) => {
    const child = spawn(program, args, { cwd: root, env, stdio: 'inherit' });
    // Interrupted, the runner ends the tests, down to each test file's process, before it stops the server they
    // use; left alone they would go on.
    const stop = onInterrupt(() => stopProcessTree(child));
    child.on('close', (code, signal) => {
      void stop().then(() => resolve(code ?? (signal ? 1 : 0)));
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

async function main(): Promise<number> {
  const filters = process.argv.slice(2);
  const files = testFiles(join(root, 'test')).filter(
    (f) => filters.length === 0 || filters.some((x) => f.includes(x)),
  );
  if (files.length === 0) {
    process.stderr.write(`no test file matches ${filters.join(' ')}\n`);
    return 2;
  }
  if (filters.length === 0) {
    if ((await run('typecheck', [bin('tsc'), '-p', '.'])) !== 0) return 1;
    if ((await run('lint', [bin('eslint'), '--max-warnings=0', '.'])) !== 0) return 1;
    if ((await run('format', [bin('prettier'), '--check', '--log-level=warn', '.'])) !== 0) return 1;
  }

  // Install every real component before any test starts: test files run in parallel, and two installs at once
  // would fight over Debian's dpkg lock or duplicate a Go build.
  process.stdout.write('\n▶ real components\n');
  process.stdout.write(`  temporal ${await ensureTemporalCli()}\n  haproxy ${await ensureHaproxy()}\n`);
  process.stdout.write(`  kubernetes ${(await ensureKubernetesBinaries()).kubeApiserver}\n`);
  process.stdout.write(`  chromium ${await ensureChromium()}\n`);
  process.stdout.write(`  compose-check ${await ensureComposeCheck()}\n`);
  process.stdout.write(`  temporal server ${(await ensureTemporalServer()).server}\n`);
  process.stdout.write(`  postgresql ${await ensurePostgres()}\n`);

  const dir = await mkdtemp(join(tmpdir(), 'baton-test-'));
  process.stdout.write('\n▶ starting a real Temporal dev server\n');
  const server = await startTemporalDevServer({
    dbFile: join(dir, 'temporal.db'),
    logFile: join(dir, 'temporal.log'),
    namespace: 'baton-test',
  });
  process.stdout.write(`  ${server.address} (UI ${server.uiUrl})\n`);
  const fleetsDir = join(dir, 'fleets');
  const stop = onInterrupt(async () => {
    const swept = (await sweepFleets(fleetsDir)) + (await sweepClusters(fleetsDir));
    if (swept > 0) process.stdout.write(`  swept ${swept} test fleets and clusters\n`);
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });
  try {
    return await run(
      `${files.length} test files`,
      [
        process.execPath,
        '--import',
        'tsx',
        '--test',
        '--test-reporter=spec',
        '--test-concurrency=2',
        ...files,
      ],
      {
        ...process.env,
        BATON_TEST_TEMPORAL_ADDRESS: server.address,
        BATON_TEST_TEMPORAL_NAMESPACE: server.namespace,
        BATON_TEST_TEMPORAL_UI: server.uiUrl,
        // Where test fleets and clusters go, so that the sweep at the end finds what a crashed test left running.
        BATON_TEST_FLEETS_DIR: fleetsDir,
      },
    );
  } finally {
    await stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${String((error as Error)?.stack ?? error)}\n`);
    process.exit(1);
  },
);
