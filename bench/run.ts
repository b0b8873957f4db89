import { DefaultLogger, makeTelemetryFilterString, Runtime } from '@temporalio/worker';
import { installComponents } from '../infra/install';
import { benchMissed } from './verdict';
import { runCommands } from './commands';
import { runCrashMatrix } from './crash-matrix';
import { runFleetScale } from './fleet-scale';
import { runConcurrency } from './concurrency';
import { runOverhead } from './overhead';
import { runScale } from './scale';
import { runK8sVsNative } from './k8s-vs-native';
import { runK8sZeroDrop } from './k8s-zero-drop';
import { runZeroDrop } from './zero-drop';

/**
 * `npm run bench -- <name>`: runs one benchmark. Each prints a table and, as its last stdout line, one JSON object
 * with its figures (ratios are against a baseline measured in the same run).
 */
const benchmarks: Record<string, () => Promise<void>> = {
  'zero-drop': runZeroDrop,
  'k8s-zero-drop': runK8sZeroDrop,
  'k8s-vs-native': runK8sVsNative,
  'crash-matrix': runCrashMatrix,
  overhead: runOverhead,
  scale: runScale,
  'fleet-scale': runFleetScale,
  concurrency: runConcurrency,
  commands: runCommands,
};

async function main(): Promise<number> {
  const name = process.argv[2];
  const bench = name ? benchmarks[name] : undefined;
  if (!bench) {
    process.stderr.write(
      `usage: npm run bench -- <name>\nbenchmarks: ${Object.keys(benchmarks).join(', ')}\n`,
    );
    return 2;
  }
  // The table and the JSON line own stdout; the worker's notices go to stderr.
  Runtime.install({
    logger: new DefaultLogger('WARN', ({ level, message }) =>
      process.stderr.write(`worker ${level}: ${message}\n`),
    ),
    // The SDK core's own notices (payload size warnings) would otherwise print on stdout.
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }), forward: {} } },
  });
  // Every component a benchmark uses installs first, as for `npm test`, not inside a timed run; what is already in
  // the cache costs a look. Its lines go to stderr: stdout is the table's and the JSON line's.
  for (const line of await installComponents()) process.stderr.write(`bench: ${line}\n`);
  await bench();
  return benchMissed() ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exit(1);
  },
);
