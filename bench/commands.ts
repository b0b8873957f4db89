import { runCommandModel, simulatedWorld } from '../test/helpers/command-model';
import { startSimulatedBench } from './simulated';
import { printTable } from './table';
import { reportFigures } from './verdict';

/**
 * `npm run bench -- commands`: the command model of the test suite, at benchmark size. Generated sequences of
 * pause, resume, promote, promote --full and abort, sent at random moments to real rollouts on a real Temporal
 * server with simulated fleets; every answer checked against what then happened.
 */
export async function runCommands(): Promise<void> {
  const count = Number(process.env.BATON_BENCH_SEQUENCES ?? 2_000);
  const bench = await startSimulatedBench('commands', {
    detachMs: 0,
    drainMs: 10,
    upgradeMs: 20,
    verifyMs: 10,
    attachMs: 0,
  });
  try {
    const started = Date.now();
    const figures = await runCommandModel(
      simulatedWorld(bench.client, bench.fleets, bench.taskQueue),
      count,
      40,
    );
    const wallS = Math.round((Date.now() - started) / 100) / 10;
    for (const violation of figures.violations) process.stderr.write(`violation: ${violation}\n`);
    printTable(
      [
        'sequences',
        'commands',
        'rolling',
        'rolling-gate',
        'rolling-runs',
        'canary-gate',
        'violations',
        'wallS',
      ],
      [
        [
          figures.sequences,
          figures.commands,
          figures.byShape.rolling,
          figures.byShape['rolling-gate'],
          figures.byShape['rolling-runs'],
          figures.byShape['canary-gate'],
          figures.violations.length,
          wallS,
        ],
      ],
    );
    // Target: at least 2,000 sequences with no violation.
    reportFigures(
      { sequences: figures.sequences, violations: figures.violations.length },
      figures.sequences >= 2_000 && figures.violations.length === 0,
    );
  } finally {
    await bench.close();
  }
}
