/** Prints rows as an aligned text table. */
export function printTable(
  headers: readonly string[],
  rows: ReadonlyArray<ReadonlyArray<string | number>>,
): void {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  for (const row of cells)
    process.stdout.write(`${row.map((c, i) => (c ?? '').padEnd(widths[i] ?? 0)).join('  ')}\n`);
}
