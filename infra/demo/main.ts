import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { stringify as toYaml } from 'yaml';
import type { ActivityDeps } from '../../activities';
import { realActivityDeps } from '../../activities';
import { connectBaton } from '../../client/connection';
import { exitCodes } from '../../client/exit-codes';
import { ProgressView } from '../../client/progress';
import { followRollout, startRollout } from '../../client/rollouts';
import type { RolloutSpecInput } from '../../spec';
import { parseRolloutSpec, SpecError } from '../../spec';
import { createBatonWorker } from '../../worker/create-worker';
import { cacheRoot } from '../cache';
import { hostVersions } from '../fleet/hosts';
import { startLocalFleet } from '../fleet/local-fleet';
import { startLoad } from '../load';
import { kubernetesDemoInput, kubernetesDemoVersions, startKubernetesDemo } from './kubernetes';
import { onInterrupt } from '../interrupt';
import { tryFileLock } from '../lock';
import { portInUse } from '../ports';
import type { TemporalDevServer } from '../temporal-server';
import { startTemporalDevServer } from '../temporal-server';
import { delay } from '../processes';

/** What the demo rolls out, whichever the target: where its load goes, the spec, and how to count the result. */
interface DemoTarget {
  readonly url: string;
  /** "HAProxy", "the Service": what the load goes through, for the demo's messages. */
  readonly through: string;
  readonly units: 'servers' | 'pods';
  readonly input: RolloutSpecInput;
  readonly deps: ActivityDeps;
  onNewVersion(): Promise<number>;
  /** With --keep: what stays running, and commands to explore it with besides baton's own. */
  readonly kept: { readonly what: string; readonly commands: readonly string[] };
  /** What the kept spec rolls out: "fleet", and "9 servers behind HAProxy". */
  readonly rolledOut: { readonly noun: 'fleet' | 'app'; readonly detail: string };
  /** false: a new connection per request (see startLoad). */
  readonly keepAlive: boolean;
}

interface DemoOptions {
  servers: number;
  batch: number;
  rate: number;
  from: string;
  to: string;
  strategy: string;
  target: 'fleet' | 'kubernetes';
  keep: boolean;
  json: boolean;
}

const positiveInt = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError(`${name}: expected a whole number of at least 1`);
  return n;
};

function parseOptions(argv: string[]): DemoOptions {
  const program = new Command('npm run demo --')
    .description(
      'Roll a fleet of real servers behind HAProxy from v1 to v2 under steady load, on a local Temporal.',
    )
    .addOption(
      new Option('--servers <n>', 'servers in the fleet').default(9).argParser(positiveInt('--servers')),
    )
    .addOption(
      new Option('--batch <n>', 'servers upgraded at a time').default(2).argParser(positiveInt('--batch')),
    )
    .addOption(
      new Option('--rate <n>', 'requests per second sent through HAProxy')
        .default(100)
        .argParser(positiveInt('--rate')),
    )
    .option('--from <version>', 'version the fleet starts on', 'v1')
    .option('--to <version>', 'version to roll out', 'v2')
    .addOption(
      new Option('--strategy <name>', 'rollout strategy')
        .choices(['rolling', 'recreate', 'blue-green', 'canary', 'surge'])
        .default('rolling'),
    )
    .addOption(
      new Option(
        '--target <kind>',
        'what is rolled out: servers behind HAProxy, or pods on a real Kubernetes node',
      )
        .choices(['fleet', 'kubernetes'])
        .default('fleet'),
    )
    .option('--keep', 'leave everything running afterwards, for exploring (Ctrl-C stops it)', false)
    .option('--json', 'print the summary as one JSON object on the last line of stdout', false)
    .addHelpText(
      'after',
      '\nExamples:\n  npm run demo\n  npm run demo -- --servers 5 --batch 1 --rate 300 --json\n  npm run demo -- --strategy canary\n  npm run demo -- --strategy blue-green',
    )
    .exitOverride()
    .parse(argv, { from: 'user' });
  const options = program.opts<DemoOptions>();
  if (options.target === 'kubernetes') {
    for (const [flag, version] of [
      ['--from', options.from],
      ['--to', options.to],
    ] as const)
      if (!(kubernetesDemoVersions as readonly string[]).includes(version))
        program.error(
          `error: ${flag}: expected one of the demo image's versions ${kubernetesDemoVersions.join(', ')} on --target kubernetes, got "${version}"`,
          { exitCode: exitCodes.badInput },
        );
  }
  return options;
}

/** The demo's strategy: canary analyses each share over a few seconds of the demo's own load. */
function demoStrategy(options: DemoOptions): RolloutSpecInput['strategy'] {
  if (options.strategy === 'recreate') return { type: 'recreate' };
  if (options.strategy === 'blue-green') return { type: 'blue-green', scaleDownDelay: '3s' };
  if (options.strategy === 'surge') return { type: 'surge' };
  if (options.strategy === 'canary')
    return {
      type: 'canary',
      steps: [
        { setWeight: 10 },
        { analysis: { window: '5s' } },
        { setWeight: 50 },
        { analysis: { window: '5s' } },
      ],
      batchSize: options.batch,
    };
  return { type: 'rolling', batchSize: options.batch };
}

/**
 * The kept demo's spec as a user would keep it: the demo's own, with time between rolling steps so that pause,
 * resume and abort can be tried by hand on a second rollout. A fleet waits between batches; Kubernetes, which
 * takes no pauseBetweenBatches, waits after each scale-up but the last.
 */
function playgroundSpec(
  input: RolloutSpecInput,
  options: DemoOptions,
  rolledOut: DemoTarget['rolledOut'],
): string {
  const wait = '30s';
  const strategy =
    input.strategy?.type !== 'rolling'
      ? input.strategy
      : options.target === 'kubernetes'
        ? {
            ...input.strategy,
            pauses: Array.from({ length: Math.max(1, options.servers - 1) }, (_, i) => ({
              after: i + 1,
              duration: wait,
            })),
          }
        : { ...input.strategy, pauseBetweenBatches: wait };
  return [
    `# The demo's ${rolledOut.noun} (${rolledOut.detail}), kept by \`npm run demo -- --keep\`.`,
    '# Start a rollout of it with: npx baton start -f <this file> --version v3',
    toYaml({ ...input, strategy }),
  ].join('\n');
}

/** "v2" → "v3"; any other version gets "-next". */
function nextVersion(version: string): string {
  const match = /^(.*?)(\d+)$/.exec(version);
  return match ? `${match[1]}${Number(match[2]) + 1}` : `${version}-next`;
}

/** The commands the kept demo prints, each runnable as printed from the project's folder. */
function playgroundCommands(playground: {
  specFile: string;
  address: string;
  namespace: string;
  taskQueue: string;
  target: string;
  next: string;
}): string[] {
  const { target } = playground;
  return [
    `export TEMPORAL_ADDRESS=${playground.address} TEMPORAL_NAMESPACE=${playground.namespace} BATON_TASK_QUEUE=${playground.taskQueue}`,
    `npx baton start -f ${playground.specFile} --version ${playground.next} --detach   # a second rollout`,
    `npx baton status ${target}`,
    `npx baton pause ${target} --reason "a closer look"`,
    `npx baton resume ${target}`,
    `npx baton abort ${target} --reason "trying abort"   # rolls back to the version it started from`,
    `npx baton watch ${target}`,
    `npx baton history ${target}   # every step and every command, with who sent it`,
  ];
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  // Stdout carries the summary (its last line is the JSON with --json); the worker's notices go to stderr.
  Runtime.install({
    logger: new DefaultLogger('WARN', ({ level, message }) =>
      process.stderr.write(`worker ${level}: ${message}\n`),
    ),
  });
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const cleanups: Array<() => Promise<unknown>> = [];
  const runCleanups = async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
    cleanups.length = 0;
  };
  let cleanUp = runCleanups;

  try {
    // Temporal: the user's, or a local dev server whose SQLite file keeps the demo's history between runs.
    let server: TemporalDevServer | undefined;
    if (!process.env.TEMPORAL_ADDRESS) {
      log('starting a local Temporal server…');
      // One demo at a time keeps its history in the cache; another one running beside it gets a scratch database,
      // since two servers on one SQLite file would corrupt it.
      const kept = join(cacheRoot(), 'demo');
      await mkdir(kept, { recursive: true });
      const release = await tryFileLock(join(kept, 'demo.lock'));
      let dir = kept;
      if (release) cleanups.push(release);
      else {
        dir = await mkdtemp(join(tmpdir(), 'baton-demo-temporal-'));
        log(`another demo uses ${kept}; this one keeps its history in ${dir} until it ends`);
        cleanups.push(() => rm(dir, { recursive: true, force: true }));
      }
      // Temporal's usual ports go to the demo holding the lock, so two demos don't both reach for them; any other
      // process may still take them between the check and the bind, and then the server starts on free ports.
      const serverOptions = {
        dbFile: join(dir, 'temporal.db'),
        logFile: join(dir, 'temporal.log'),
        namespace: 'default',
      };
      const defaultPorts = release !== undefined && !(await portInUse(7233)) && !(await portInUse(8233));
      server = defaultPorts
        ? await startTemporalDevServer({ ...serverOptions, port: 7233, uiPort: 8233 }).catch(() => {
            log('ports 7233 and 8233 were taken as the server started; starting it on free ports');
            return startTemporalDevServer(serverOptions);
          })
        : await startTemporalDevServer(serverOptions);
      const started = server;
      cleanups.push(() => started.stop());
      process.env.TEMPORAL_ADDRESS = server.address;
    }
    // Registered once the server is up, so that an interrupt stops the worker and the fleet before the server.
    cleanUp = onInterrupt(runCleanups);
    const baton = await connectBaton();
    cleanups.push(() => baton.close());
    const uiBase = server?.uiUrl ?? process.env.BATON_TEMPORAL_UI ?? 'http://localhost:8233';

    // The fleet's hosts and HAProxy, or the Kubernetes cluster, keep their files here; Ctrl-C removes it.
    const demoDir = await mkdtemp(join(tmpdir(), 'baton-demo-'));
    cleanups.push(() => rm(demoDir, { recursive: true, force: true }));
    let demo: DemoTarget;
    if (options.target === 'kubernetes') {
      log(
        `starting Kubernetes with a real node, and ${options.servers} pods of the demo app on ${options.from}…`,
      );
      const cluster = await startKubernetesDemo({
        dir: join(demoDir, 'kubernetes'),
        replicas: options.servers,
        version: options.from,
      });
      cleanups.push(() => cluster.stop());
      demo = {
        url: cluster.url,
        through: 'the Service',
        units: 'pods',
        input: kubernetesDemoInput(cluster.target, options.strategy, options.to),
        deps: cluster.deps,
        onNewVersion: () => cluster.podsOn(options.to),
        rolledOut: {
          noun: 'app',
          detail: `${options.servers} pods of a Deployment behind a Service, on a real node`,
        },
        // kube-proxy picks a pod per connection: kept-alive connections stay on the pods they first reached, and a
        // canary's new pods would get none of this one client's requests to judge. Many clients spread them.
        keepAlive: options.strategy !== 'canary',
        kept: {
          what: `Kubernetes with kubeconfig ${cluster.kubeconfig}, the Service at ${cluster.url}`,
          commands: [
            `${cluster.kubectl} --kubeconfig ${cluster.kubeconfig} get deployments,pods -o wide   # old and new pods`,
          ],
        },
      };
    } else {
      log(`starting HAProxy and ${options.servers} servers on ${options.from}…`);
      const started = await startLocalFleet({
        dir: demoDir,
        servers: options.servers,
        version: options.from,
        // Real services take a moment to boot and to answer; so does the demo app.
        defaults: { latencyMs: 20, startupMs: 1_000 },
      });
      cleanups.push(() => started.stop());
      // Blue/green and surge create new servers and destroy the old ones: the fleet is what HAProxy's backend holds.
      const creates = options.strategy === 'blue-green' || options.strategy === 'surge';
      const fleetInput = started.spec({ version: options.to, strategy: demoStrategy(options) }, 'demo-web');
      demo = {
        url: `${started.haproxy.frontendUrl}/`,
        through: 'HAProxy',
        units: 'servers',
        input: creates ? { ...fleetInput, target: started.provisionedTarget('demo-web') } : fleetInput,
        deps: realActivityDeps(),
        onNewVersion: async () =>
          Object.values(await hostVersions(started.dir)).filter((v) => v === options.to).length,
        rolledOut: { noun: 'fleet', detail: `${options.servers} servers behind HAProxy` },
        keepAlive: true,
        kept: {
          what: `HAProxy ${started.haproxy.frontendUrl}, admin socket ${started.haproxy.socket}`,
          commands: [],
        },
      };
    }
    const input = demo.input;

    const taskQueue = `baton-demo-${process.pid}`;
    const workerConnection = await NativeConnection.connect({ address: baton.address });
    const worker = await createBatonWorker({
      connection: workerConnection,
      namespace: baton.namespace,
      taskQueue,
      deps: demo.deps,
    });
    const workerRun = worker.run();
    cleanups.push(async () => {
      worker.shutdown();
      await workerRun;
      await workerConnection.close();
    });

    const spec = parseRolloutSpec(input, 'demo spec');
    log(`sending ${options.rate} requests/s through ${demo.through} at ${demo.url}`);
    const load = startLoad({ url: demo.url, ratePerSecond: options.rate, keepAlive: demo.keepAlive });
    await delay(1_000);
    const started = Date.now();
    const handle = await startRollout(baton.client, spec, { taskQueue });
    const uiUrl = `${uiBase}/namespaces/${baton.namespace}/workflows/${encodeURIComponent(handle.workflowId)}/${handle.firstExecutionRunId}/history`;
    const { units } = demo;
    const k8s = options.target === 'kubernetes';
    const plans: Record<string, string> = {
      recreate: `recreating ${options.from} → ${options.to}: every ${units.slice(0, -1)} stops, then all start on ${options.to}`,
      canary: k8s
        ? `canary ${options.from} → ${options.to}: 25% of the pods, analysis, 50%, analysis, then all`
        : `canary ${options.from} → ${options.to}: 10% of requests, analysis, 50%, analysis, then everyone ${options.batch} at a time`,
      rolling: k8s
        ? `rolling ${options.from} → ${options.to}: new pods up, then each old pod out of the Service before it goes`
        : `rolling ${options.from} → ${options.to}, ${options.batch} at a time`,
      'blue-green': `blue/green ${options.from} → ${options.to}: a new set of ${options.servers} ${units}, then all traffic switches at once`,
      surge: `surge ${options.from} → ${options.to}: ${options.servers} new ${units} join, then the ${options.servers} oldest leave`,
    };
    log(`${plans[options.strategy] ?? options.strategy} (${uiUrl})\n`);
    const view = new ProgressView(process.stderr);
    const outcome = await followRollout(handle, (status) => view.update(status));
    const durationS = (Date.now() - started) / 1000;
    await delay(500);
    const stats = await load.stop();
    const summary = {
      target: options.target,
      strategy: options.strategy,
      servers: options.servers,
      onNewVersion: await demo.onNewVersion(),
      sent: stats.sent,
      failed: stats.failed,
      durationS: Math.round(durationS * 10) / 10,
      uiUrl,
      phase: outcome.kind === 'result' ? outcome.result.phase : 'failed',
    };
    const lines = [
      '',
      `rollout ${summary.phase}: ${summary.onNewVersion} of ${summary.servers} ${demo.units} on ${options.to} in ${summary.durationS} s`,
      `requests: ${summary.sent} sent, ${summary.failed} failed${stats.failed > 0 ? ` ${JSON.stringify(stats.errors)}` : ''}`,
      ...(options.strategy === 'recreate'
        ? [
            `(recreate drops the requests that arrive while no ${demo.units.slice(0, -1)} runs, by design: for versions that cannot overlap)`,
          ]
        : []),
      `history in the Temporal UI: ${uiUrl}`,
    ];
    process.stdout.write(
      options.json ? `${lines.join('\n')}\n${JSON.stringify(summary)}\n` : `${lines.join('\n')}\n`,
    );

    if (options.keep) {
      const specFile = join(demoDir, 'rollout.yaml');
      await writeFile(specFile, playgroundSpec(input, options, demo.rolledOut));
      log(
        [
          '',
          `kept running: ${demo.kept.what}, Temporal ${baton.address}, UI ${uiBase}.`,
          `The ${demo.rolledOut.noun}'s spec is ${specFile}. Try, from ${process.cwd()} in another terminal:`,
          '',
          ...playgroundCommands({
            specFile,
            address: baton.address,
            namespace: baton.namespace,
            taskQueue,
            target: spec.target.name,
            next: nextVersion(options.to),
          }).map((line) => `  ${line}`),
          ...demo.kept.commands.map((line) => `  ${line}`),
          '',
          `  ${uiBase}/namespaces/${baton.namespace}/workflows   # every rollout, in the Temporal UI`,
          '',
          'Ctrl-C stops everything.',
        ].join('\n'),
      );
      await new Promise(() => undefined);
    }
    const droppedByDesign = options.strategy === 'recreate';
    return summary.phase === 'succeeded' && (summary.failed === 0 || droppedByDesign)
      ? exitCodes.ok
      : exitCodes.failed;
  } finally {
    await cleanUp();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof CommanderError) process.exit(error.exitCode === 0 ? 0 : exitCodes.badInput);
    process.stderr.write(
      `demo: ${error instanceof SpecError ? error.message : ((error as Error)?.stack ?? String(error))}\n`,
    );
    process.exit(error instanceof SpecError ? exitCodes.badInput : exitCodes.failed);
  },
);
