import { Command, CommanderError, Option } from 'commander';
import { stringify as toYaml } from 'yaml';
import { loadRolloutSpecFile, SpecError } from '../spec';
import { defaultTaskQueue } from '../workflows/messages';
import type { BatonClient } from './connection';
import { connectBaton, TemporalUnreachableError } from './connection';
import { exitCodes } from './exit-codes';
import { ProgressView, renderStatus, useColour } from './progress';
import {
  followRollout,
  RolloutConflictError,
  RolloutNotFoundError,
  rolloutStatus,
  startRollout,
} from './rollouts';

type OutputFormat = 'table' | 'json' | 'yaml';
const outputOption = () =>
  new Option('-o, --output <format>', 'output format').choices(['table', 'json', 'yaml']).default('table');

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
    if (error instanceof RolloutConflictError || error instanceof RolloutNotFoundError) {
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
    .showHelpAfterError()
    .exitOverride();

  program
    .command('start')
    .description(
      'Start a rollout from a spec file and follow it to its end (or return at once with --detach)',
    )
    .requiredOption('-f, --file <path>', 'rollout spec, YAML or JSON')
    .option('--detach', 'return as soon as the rollout has started')
    .option(
      '--task-queue <name>',
      'task queue of the Baton workers',
      process.env.BATON_TASK_QUEUE ?? defaultTaskQueue,
    )
    .addOption(outputOption())
    .addHelpText(
      'after',
      `
Examples:
  baton start -f rollout.yaml                 # start and follow until it succeeds or rolls back
  baton start -f rollout.yaml --detach -o json
Exit codes: 0 succeeded, 1 rolled back or failed, 2 bad spec (nothing started), 3 target busy.`,
    )
    .action(async (options: { file: string; detach?: boolean; taskQueue: string; output: OutputFormat }) => {
      // Validate before connecting: a bad spec never reaches Temporal.
      const spec = await loadRolloutSpecFile(options.file).catch((error: unknown) => {
        if (error instanceof SpecError) {
          process.stderr.write(`baton: ${error.message}\n`);
          process.exit(exitCodes.badInput);
        }
        throw error;
      });
      process.exitCode = await withClient(async ({ client }) => {
        const handle = await startRollout(client, spec, { taskQueue: options.taskQueue });
        const started = {
          workflowId: handle.workflowId,
          runId: handle.firstExecutionRunId,
          target: spec.target.name,
        };
        if (options.detach) {
          print(options.output, started, () => [`started ${started.workflowId} (run ${started.runId})`]);
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
      });
    });

  program
    .command('status')
    .description("Show where a target's rollout stands: phase, batch, and each server's step")
    .argument('<target>', 'the target name from the spec')
    .addOption(outputOption())
    .addHelpText('after', '\nExamples:\n  baton status web\n  baton status web -o json')
    .action(async (target: string, options: { output: OutputFormat }) => {
      process.exitCode = await withClient(async ({ client }) => {
        const status = await rolloutStatus(client, target);
        print(options.output, status, () => renderStatus(status, { colour: useColour(process.stdout) }));
        return exitCodes.ok;
      });
    });

  return program;
}

export async function runCli(argv: readonly string[]): Promise<void> {
  try {
    await buildCli().parseAsync([...argv]);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode === 0 ? exitCodes.ok : exitCodes.badInput;
      return;
    }
    process.stderr.write(`baton: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exitCode = exitCodes.failed;
  }
}

if (require.main === module || process.argv[1]?.endsWith('baton.js')) {
  void runCli(process.argv);
}
