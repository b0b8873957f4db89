/** The number a server's name ends with, or undefined: "web-12" -> 12. */
function serial(name: string): number | undefined {
  const match = /(\d+)$/.exec(name);
  return match ? Number(match[1]) : undefined;
}

/**
 * Servers in creation order, as Baton names the servers it creates: by the number their name ends with, lowest
 * (oldest) first; names without a number count as older than any, in the order given.
 *
 * oldestFirst([{ name: 'web-10' }, { name: 'web-9' }, { name: 'db' }]) -> db, web-9, web-10
 */
export function oldestFirst<T extends { readonly name: string }>(servers: readonly T[]): T[] {
  return servers
    .map((server, index) => ({ server, index, serial: serial(server.name) ?? -1 }))
    .sort((a, b) => a.serial - b.serial || a.index - b.index)
    .map((entry) => entry.server);
}

/**
 * Names for `count` new servers: the newest existing name's prefix with the numbers after the highest in use, so
 * creation order stays readable from names alone. A fleet whose names carry no number gets `<fallback>-<n>`.
 *
 * nextServerNames(['web-1', 'web-2'], 2, 'shop') -> ['web-3', 'web-4']
 */
export function nextServerNames(existing: readonly string[], count: number, fallback: string): string[] {
  const numbered = existing.filter((name) => serial(name) !== undefined);
  const newest = oldestFirst(numbered.map((name) => ({ name }))).at(-1)?.name;
  const prefix = newest ? newest.replace(/\d+$/, '') : `${fallback}-`;
  const highest = Math.max(0, ...numbered.map((name) => serial(name) ?? 0));
  const taken = new Set(existing);
  const names: string[] = [];
  for (let n = highest + 1; names.length < count; n++) {
    const name = `${prefix}${n}`;
    if (!taken.has(name)) names.push(name);
  }
  return names;
}
