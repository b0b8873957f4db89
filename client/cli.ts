import { hostname, userInfo } from 'node:os';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { defaultKubernetesClients } from '../activities/kubernetes/api';
import { completionScript } from './completion';
import { fleetStarterSpec, InitError, kubernetesStarterSpec } from './init';
import packageJson from '../package.json';
import { stringify as toYaml } from 'yaml';
import type { RolloutSpec } from '../spec';
import { loadRolloutSpecFile, SpecError } from '../spec';
import { resourceName } from '../spec/rollout';
import { hiddenCharacterIn, hiddenCharacterMessage, printable } from '../spec/text';
import type { RolloutWorkflow } from '../workflows/messages';
import { defaultTaskQueue, rolloutWorkflowId } from '../workflows/messages';
import { fetchRolloutEvents, renderHistory, rolloutHistory } from './history';
import type { BatonClient } from './connection';
import { connectBaton, TemporalUnreachableError } from './connection';
import { exitCodes } from './exit-codes';
import { ProgressView, renderStatus, useColour } from './progress';
import type { OperatorVerb, RolloutListing } from './rollouts';
import {
  commandRollout,
  followRollout,
  listRollouts,
  RolloutCommandRejectedError,
  RolloutConflictError,
  rolloutHandle,
  RolloutNotFoundError,
  retryRollout,
  rolloutStatus,
  startRollout,
  undoRollout,
} from './rollouts';

type OutputFormat = 'table' | 'json' | 'yaml';
const outputOption = () =>
  new Option('-o, --output <format>', 'output format').choices(['table', 'json', 'yaml']).default('table');

/** A target name as specs allow it, checked before anything reaches Temporal. */
function parseTarget(value: string): string {
  const parsed = resourceName.safeParse(value);
  if (!parsed.success)
    throw new InvalidArgumentError(parsed.error.issues[0]?.message ?? 'expected a target name');
  return parsed.data;
}

/** A reason is shown later in terminals and the Temporal UI, so it holds visible text only, and not a page of it. */
function parseReason(value: string): string {
  const hidden = hiddenCharacterIn(value);
  if (hidden) throw new InvalidArgumentError(hiddenCharacterMessage(hidden));
  if (value.length > 500) throw new InvalidArgumentError('expected at most 500 characters');
  return value;
}

const targetArgument = () => new Argument('<target>', 'the target name from the spec').argParser(parseTarget);

const taskQueueOption = () =>
  new Option('--task-queue <name>', 'task queue of the Baton workers').default(
    process.env.BATON_TASK_QUEUE ?? defaultTaskQueue,
  );

function print(format: OutputFormat, value: unknown, table: () => string[]): void {
  if (format === 'json') process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  else if (format === 'yaml') process.stdout.write(toYaml(value));
  else process.stdout.write(`${table().join('\n')}\n`);
}

/** Runs a command body with a Temporal client, mapping every known failure to its exit code and one clear line. */
async function withClient(body: (baton: BatonClient) => Promise<number>): Promise<number> {
  let baton: BatonClient | undefined;
  try {
    baton = await connectBaton();
    return await body(baton);
  } catch (error) {
    if (error instanceof SpecError) {
      process.stderr.write(`baton: ${error.message}\n`);
      return exitCodes.badInput;
    }
    if (
      error instanceof RolloutConflictError ||
      error instanceof RolloutNotFoundError ||
      error instanceof RolloutCommandRejectedError
    ) {
      process.stderr.write(`baton: ${error.message}\n`);
      return exitCodes.notFoundOrConflict;
    }
    if (error instanceof TemporalUnreachableError) {
      process.stderr.write(`baton: ${error.message}\n`);
      return exitCodes.failed;
    }
    throw error;
  } finally {
    await baton?.close();
  }
}

export function buildCli(): Command {
  const program = new Command('baton')
    .description(
      'Durable rollouts on Temporal: roll a new version over a fleet or a cluster, dropping no request.',
    )
    .version(packageJson.version, '-V, --version', "print Baton's version")
    // Program options only before the verb, so that `start --version v3` is the rollout's version, not Baton's.
    .enablePositionalOptions()
    // Commander quotes a bad argument in its error: shown as <U+202E>, a hidden character can't reorder the line.
    .configureOutput({ outputError: (text, write) => write(printable(text)) })
    .showHelpAfterError()
    .exitOverride();

  program
    .command('start')
    .description(
      'Start a rollout from a spec file and follow it to its end (or return at once with --detach)',
    )
    .requiredOption('-f, --file <path>', 'rollout spec, YAML or JSON')
    .option('--version <version>', "roll out this version instead of the spec's (a CI build's tag)")
    .option('--detach', 'return as soon as the rollout has started')
    .addOption(taskQueueOption())
    .addOption(outputOption())
    .addHelpText(
      'after',
      `
Examples:
  baton start -f rollout.yaml                 # start and follow until it succeeds or rolls back
  baton start -f rollout.yaml --version "$BUILD_TAG"   # the spec's version, overridden
  baton start -f rollout.yaml --detach -o json
Exit codes: 0 succeeded, 1 rolled back or failed, 2 bad spec (nothing started), 3 target busy.`,
    )
    .action(
      async (options: {
        file: string;
        version?: string;
        detach?: boolean;
        taskQueue: string;
        output: OutputFormat;
      }) => {
        // Validate before connecting: a bad spec never reaches Temporal.
        let spec;
        try {
          spec = await loadRolloutSpecFile(
            options.file,
            options.version === undefined ? {} : { version: options.version },
          );
        } catch (error) {
          if (!(error instanceof SpecError)) throw error;
          process.stderr.write(`baton: ${error.message}\n`);
          process.exitCode = exitCodes.badInput;
          return;
        }
        process.exitCode = await withClient(async ({ client }) => {
          const handle = await startRollout(client, spec, {
            taskQueue: options.taskQueue,
            startedBy: { by: operatorName(), via: 'start' },
          });
          return report(handle, spec, options);
        });
      },
    );

  const again: ReadonlyArray<['retry' | 'undo', string, string]> = [
    [
      'retry',
      'Start the last rollout of a target again, same spec, when it failed or rolled back: servers already on the version stay as they are',
      'baton retry web',
    ],
    [
      'undo',
      'Roll a target back to the version its last successful rollout started from, with the same strategy',
      'baton undo web --detach',
    ],
  ];
  for (const [verb, description, example] of again) {
    program
      .command(verb)
      .description(description)
      .addArgument(targetArgument())
      .option('--detach', 'return as soon as the rollout has started')
      .addOption(taskQueueOption())
      .addOption(outputOption())
      .addHelpText(
        'after',
        `\nExamples:\n  ${example}\nExit codes: 0 succeeded, 1 rolled back or failed, 3 no such rollout, still running, or nothing to ${verb}.`,
      )
      .action(
        async (target: string, options: { detach?: boolean; taskQueue: string; output: OutputFormat }) => {
          process.exitCode = await withClient(async ({ client }) => {
            const { handle, spec } = await (verb === 'retry' ? retryRollout : undoRollout)(client, target, {
              taskQueue: options.taskQueue,
              startedBy: { by: operatorName(), via: verb },
            });
            return report(handle, spec, options);
          });
        },
      );
  }

  program
    .command('status')
    .description("Show where a target's rollout stands: phase, batch, and each server's step")
    .addArgument(targetArgument())
    .addOption(outputOption())
    .addHelpText('after', '\nExamples:\n  baton status web\n  baton status web -o json')
    .action(async (target: string, options: { output: OutputFormat }) => {
      process.exitCode = await withClient(async ({ client }) => {
        const status = await rolloutStatus(client, target);
        print(options.output, status, () => renderStatus(status, { colour: useColour(process.stdout) }));
        return exitCodes.ok;
      });
    });

  const operatorVerbs: ReadonlyArray<[OperatorVerb, string, string]> = [
    [
      'pause',
      'Pause a rollout after the steps in flight (a native Deployment gets spec.paused)',
      'baton pause web --reason "watch the error rate"',
    ],
    ['resume', 'Resume a paused rollout', 'baton resume web'],
    [
      'promote',
      'Let a rollout past the gate it waits at (or every gate ahead, with --full); lifts a pause too',
      'baton promote web\n  baton promote web --full --reason "metrics look good"',
    ],
    [
      'abort',
      'Abort a rollout: it rolls back to the version it started from',
      'baton abort web --reason "latency up"',
    ],
  ];
  for (const [verb, description, examples] of operatorVerbs) {
    const command = program
      .command(verb)
      .description(description)
      .addArgument(targetArgument())
      .option('--reason <text>', 'why; recorded in the rollout history with who sent it', parseReason)
      .addOption(outputOption())
      .addHelpText(
        'after',
        `\nExamples:\n  ${examples}\nExit codes: 0 accepted, 2 bad input, 3 no such rollout, or the rollout refused (with its reason).`,
      );
    if (verb === 'promote') command.option('--full', 'skip every remaining pause and gate');
    command.action(
      async (target: string, options: { reason?: string; full?: boolean; output: OutputFormat }) => {
        process.exitCode = await withClient(async ({ client }) => {
          const status = await commandRollout(client, target, verb, {
            by: operatorName(),
            ...(options.reason !== undefined ? { reason: options.reason } : {}),
            ...(options.full ? { full: true } : {}),
          });
          print(options.output, status, () => [
            `${target}: ${verb} accepted`,
            ...renderStatus(status, { colour: useColour(process.stdout) }),
          ]);
          return exitCodes.ok;
        });
      },
    );
  }

  program
    .command('watch')
    .description('Follow a running rollout live until it ends: phase, batches, each server or Deployment')
    .addArgument(targetArgument())
    .addHelpText(
      'after',
      '\nExamples:\n  baton watch web\nExit codes: 0 succeeded, 1 rolled back or failed, 3 no such rollout.',
    )
    .action(async (target: string) => {
      const view = new ProgressView(process.stdout);
      process.exitCode = await withClient(async ({ client }) => {
        await rolloutStatus(client, target);
        const outcome = await followRollout(rolloutHandle(client, target), (status) => view.update(status));
        if (outcome.kind === 'failed') {
          process.stdout.write(`${target}: failed: ${outcome.reason}\n`);
          return exitCodes.failed;
        }
        const { result } = outcome;
        process.stdout.write(`${target}: ${result.phase}${result.reason ? `: ${result.reason}` : ''}\n`);
        return result.phase === 'succeeded' ? exitCodes.ok : exitCodes.failed;
      });
    });

  program
    .command('list')
    .description('List rollouts, newest first, through the search attributes Baton sets')
    .addOption(
      new Option('--phase <phase>', 'only rollouts in this phase').choices([
        'starting',
        'progressing',
        'paused',
        'rolling-back',
        'succeeded',
        'rolled-back',
        'failed',
      ]),
    )
    .option('--target <name>', 'only rollouts of this target', parseTarget)
    .option(
      '--limit <n>',
      'at most this many',
      (value) => {
        const n = Number(value);
        if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number above 0');
        return n;
      },
      20,
    )
    .addOption(outputOption())
    .addHelpText('after', '\nExamples:\n  baton list --phase paused\n  baton list --target web -o json')
    .action(async (options: { phase?: string; target?: string; limit: number; output: OutputFormat }) => {
      process.exitCode = await withClient(async ({ client }) => {
        const rollouts = await listRollouts(client, options);
        print(options.output, rollouts, () => renderListing(rollouts));
        return exitCodes.ok;
      });
    });

  program
    .command('history')
    .description(
      'The steps of a rollout (the latest of the target, or --run) with times, durations and outcomes',
    )
    .addArgument(targetArgument())
    .option('--run <id>', 'a run id from baton list, for an earlier rollout of the target')
    .addOption(outputOption())
    .addHelpText('after', '\nExamples:\n  baton history web\n  baton history web --run 0195... -o json')
    .action(async (target: string, options: { run?: string; output: OutputFormat }) => {
      process.exitCode = await withClient(async ({ client }) => {
        const events = await fetchRolloutEvents(client, rolloutWorkflowId(target), options.run).catch(
          (error: unknown) => {
            if (error instanceof WorkflowNotFoundError)
              throw new RolloutNotFoundError(
                `no rollout of ${target}${options.run ? ` with run ${options.run}` : ''} was found`,
              );
            throw error;
          },
        );
        const entries = rolloutHistory(events);
        print(options.output, entries, () => renderHistory(entries));
        return exitCodes.ok;
      });
    });

  const init = program
    .command('init')
    .description('Write a starter spec, commented, from what runs now: an HAProxy backend or a Deployment');
  const initOutput = (command: Command) =>
    command
      .option('-f, --file <path>', 'write the spec here (refused if the file exists) instead of stdout')
      .option('--name <target>', 'the target name (defaults to the backend or Deployment)', parseTarget);
  initOutput(
    init
      .command('fleet')
      .description("A fleet spec from an HAProxy backend's servers, read over the Runtime API")
      .requiredOption('--socket <path>', "HAProxy's admin socket")
      .requiredOption('--backend <name>', 'the backend holding the servers', parseTarget)
      .option('--version <version>', 'the version the servers run (read from GET /healthz if not given)')
      .argument('<upgrade...>', 'after --: the upgrade command, one argument each, with {name} {version} …')
      .addHelpText(
        'after',
        '\nExamples:\n  baton init fleet --socket /run/haproxy/admin.sock --backend web -f rollout.yaml -- /usr/local/bin/deploy {name} {version}\nExit codes: 0 written, 1 HAProxy unreachable, 2 bad input, 3 no such backend.',
      ),
  ).action(
    async (
      upgrade: string[],
      options: { socket: string; backend: string; version?: string; name?: string; file?: string },
    ) => {
      process.exitCode = await writeStarter(options.file, () =>
        fleetStarterSpec({
          // The spec's socket is absolute (the worker runs elsewhere); here it is relative to the user's folder.
          socket: resolve(options.socket),
          backend: options.backend,
          upgrade,
          ...(options.version !== undefined ? { version: options.version } : {}),
          ...(options.name !== undefined ? { name: options.name } : {}),
        }),
      );
    },
  );
  initOutput(
    init
      .command('kubernetes')
      .description(
        'A Kubernetes spec from a Deployment: its container, image and tag, and the Service in front',
      )
      .requiredOption('--deployment <name>', 'the Deployment serving now', parseTarget)
      .option('-n, --namespace <name>', 'its namespace', parseTarget, 'default')
      .option('--container <name>', 'the container to roll (needed when the pod has several)', parseTarget)
      .addHelpText(
        'after',
        '\nExamples:\n  baton init kubernetes --deployment web -n shop -f rollout.yaml\nThe cluster is found as kubectl finds it (KUBECONFIG, ~/.kube/config, a service account).\nExit codes: 0 written, 1 cluster unreachable, 2 bad input, 3 no such Deployment.',
      ),
  ).action(
    async (options: {
      deployment: string;
      namespace: string;
      container?: string;
      name?: string;
      file?: string;
    }) => {
      process.exitCode = await writeStarter(options.file, async () => {
        let clients;
        try {
          clients = defaultKubernetesClients();
        } catch (error) {
          throw new InitError((error as Error).message);
        }
        return kubernetesStarterSpec(clients, {
          deployment: options.deployment,
          namespace: options.namespace,
          ...(options.container !== undefined ? { container: options.container } : {}),
          ...(options.name !== undefined ? { name: options.name } : {}),
        });
      });
    },
  );

  program
    .command('completion')
    .description('Print a shell completion script for bash or zsh')
    .addArgument(new Argument('<shell>', 'the shell').choices(['bash', 'zsh']))
    .addHelpText(
      'after',
      '\nExamples:\n  eval "$(baton completion bash)"    # in ~/.bashrc\n  baton completion zsh > "${fpath[1]}/_baton"',
    )
    .action((shell: 'bash' | 'zsh') => {
      process.stdout.write(completionScript(program, shell));
    });

  return program;
}

/** Writes a starter spec to `file` (never over one) or stdout; returns the exit code. */
async function writeStarter(file: string | undefined, make: () => Promise<string>): Promise<number> {
  let text: string;
  try {
    text = await make();
  } catch (error) {
    if (!(error instanceof InitError || error instanceof SpecError)) throw error;
    process.stderr.write(`baton: ${error.message}\n`);
    return error instanceof InitError
      ? error.notFound
        ? exitCodes.notFoundOrConflict
        : exitCodes.failed
      : exitCodes.badInput;
  }
  if (file === undefined) {
    process.stdout.write(text);
    return exitCodes.ok;
  }
  try {
    await writeFile(file, text, { flag: 'wx' });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    process.stderr.write(
      `baton: ${code === 'EEXIST' ? `${file} exists; choose another file or remove it first` : `cannot write ${file}: ${code}`}\n`,
    );
    return exitCodes.badInput;
  }
  process.stderr.write(
    `wrote ${file}; roll out a new version with: npx baton start -f ${file} --version <version>\n`,
  );
  return exitCodes.ok;
}

/** Prints a started rollout, then (unless detached) follows it to its end; returns the exit code. */
async function report(
  handle: WorkflowHandleWithFirstExecutionRunId<RolloutWorkflow>,
  spec: RolloutSpec,
  options: { detach?: boolean; output: OutputFormat },
): Promise<number> {
  const started = {
    workflowId: handle.workflowId,
    runId: handle.firstExecutionRunId,
    target: spec.target.name,
  };
  if (options.detach) {
    print(options.output, { ...started, version: spec.version }, () => [
      `started ${started.workflowId} (run ${started.runId}) to ${spec.version}`,
    ]);
    return exitCodes.ok;
  }
  const view = options.output === 'table' ? new ProgressView(process.stderr) : undefined;
  const outcome = await followRollout(handle, (status) => view?.update(status));
  if (outcome.kind === 'failed') {
    print(options.output, { ...started, phase: 'failed', reason: outcome.reason }, () => [
      `${spec.target.name}: failed: ${outcome.reason}`,
    ]);
    return exitCodes.failed;
  }
  const { result } = outcome;
  print(options.output, { ...started, ...result }, () => [
    result.phase === 'succeeded'
      ? `${spec.target.name}: succeeded, ${result.kubernetes ? `${result.kubernetes.desired} replicas` : `${result.servers.length} servers`} on ${result.toVersion}`
      : `${spec.target.name}: rolled back: ${result.reason ?? ''}`,
  ]);
  return result.phase === 'succeeded' ? exitCodes.ok : exitCodes.failed;
}

/** Who sends a command, as recorded in the rollout's history: BATON_OPERATOR, else user@host. */
function operatorName(): string {
  return process.env.BATON_OPERATOR ?? `${userInfo().username}@${hostname()}`;
}

function renderListing(rollouts: readonly RolloutListing[]): string[] {
  if (rollouts.length === 0) return ['no rollouts'];
  const rows = rollouts.map((r) => [
    r.target,
    r.strategy ?? '',
    r.phase ?? r.status.toLowerCase(),
    `${r.fromVersion ?? '?'} → ${r.toVersion ?? '?'}`,
    r.started.replace('T', ' ').slice(0, 19),
    r.runId,
  ]);
  const header = ['TARGET', 'STRATEGY', 'PHASE', 'VERSIONS', 'STARTED', 'RUN'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]?.length ?? 0)));
  return [header, ...rows].map((row) =>
    row
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd(),
  );
}

export async function runCli(argv: readonly string[]): Promise<void> {
  try {
    await buildCli().parseAsync([...argv]);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode === 0 ? exitCodes.ok : exitCodes.badInput;
      return;
    }
    // An unexpected failure is one line for the operator; BATON_DEBUG=1 adds the stack for a bug report.
    const detail = process.env.BATON_DEBUG ? (error as Error)?.stack : (error as Error)?.message;
    process.stderr.write(`baton: ${detail ?? String(error)}\n`);
    process.exitCode = exitCodes.failed;
  }
}
