/** Whether any benchmark of this process missed its target: `npm run bench` then exits 1. */
let missed = false;

export function benchMissed(): boolean {
  return missed;
}

/**
 * Prints a benchmark's figures as its last stdout line, with `"met"`: whether they meet the target its issue
 * names. A miss is said on stderr and makes the run exit non-zero, so a bench that misses fails where it runs.
 */
export function reportFigures(figures: Record<string, unknown>, met: boolean): void {
  if (!met) {
    missed = true;
    process.stderr.write('bench: the target was missed (see bench/README.md)\n');
  }
  process.stdout.write(`${JSON.stringify({ ...figures, met })}\n`);
}
