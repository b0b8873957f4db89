import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { LoadOptions } from 'js-yaml';
import { load, YAMLException } from 'js-yaml';
import { SpecError, problemsFromZod } from './errors';
import type { RolloutSpec } from './rollout';
import { rolloutSpecSchema } from './rollout';

/** Larger specs are refused while reading: an inventory of 10,000 servers is well under this. */
export const maxSpecBytes = 4 * 1024 * 1024;

/** The deepest a spec nests is about 7 (strategy.steps[0].analysis.window); past this it is not a spec. */
export const maxSpecDepth = 32;

/** What the CLI sets over a spec file's own fields, validated as if the file held them. */
export interface SpecOverrides {
  /** `baton start --version v3`: the build a CI pipeline passes in. */
  readonly version?: string;
}

/** Validates a spec already in memory (from a file, flags or a test); throws SpecError naming every bad field. */
export function parseRolloutSpec(input: unknown, source = 'spec'): RolloutSpec {
  const result = rolloutSpecSchema.safeParse(input);
  if (!result.success) throw new SpecError(source, problemsFromZod(result.error));
  return result.data;
}

const whole = (source: string, message: string) => new SpecError(source, [{ path: '', message }]);

/** Nodes a spec may expand to once its aliases are followed: a 10,000-server inventory is about 30,000. */
export const maxSpecNodes = 1_000_000;

/**
 * How deep `data` nests and how many nodes it has once every alias is followed, without recursion (no input can
 * exhaust the stack) and in time linear in the distinct nodes: an alias is a shared object, measured once. A cycle
 * (an anchor used inside itself) counts as endless.
 */
function measure(data: unknown): { depth: number; nodes: number } {
  const measured = new Map<object, { depth: number; nodes: number }>();
  const open = new Set<object>();
  const stack: Array<{ node: object; childrenPushed: boolean }> = [];
  const children = (node: object) =>
    Object.values(node).filter((c): c is object => c !== null && typeof c === 'object');
  if (data === null || typeof data !== 'object') return { depth: 0, nodes: 1 };
  stack.push({ node: data, childrenPushed: false });
  while (stack.length > 0) {
    const top = stack[stack.length - 1] as { node: object; childrenPushed: boolean };
    if (measured.has(top.node)) {
      stack.pop();
      continue;
    }
    if (!top.childrenPushed) {
      top.childrenPushed = true;
      open.add(top.node);
      if (open.size > maxSpecDepth) return { depth: open.size, nodes: 0 };
      for (const child of children(top.node)) {
        if (open.has(child)) return { depth: Infinity, nodes: Infinity };
        if (!measured.has(child)) stack.push({ node: child, childrenPushed: false });
      }
      continue;
    }
    let depth = 0;
    let nodes = 1 + Object.keys(top.node).length;
    for (const child of children(top.node)) {
      const sub = measured.get(child) as { depth: number; nodes: number };
      depth = Math.max(depth, sub.depth);
      nodes += sub.nodes - 1;
    }
    if (nodes > maxSpecNodes) return { depth, nodes };
    measured.set(top.node, { depth: depth + 1, nodes });
    open.delete(top.node);
    stack.pop();
  }
  return measured.get(data) as { depth: number; nodes: number };
}

const tooDeep = `expected YAML or JSON nested at most ${maxSpecDepth} levels deep`;

/** Parses YAML or JSON text (JSON is YAML) into a validated spec. */
export function parseRolloutSpecText(
  text: string,
  source = 'spec',
  overrides: SpecOverrides = {},
): RolloutSpec {
  const bytes = Buffer.byteLength(text);
  if (bytes > maxSpecBytes) throw whole(source, `expected at most ${maxSpecBytes} bytes, got ${bytes}`);
  let data: unknown;
  try {
    // js-yaml: an order of magnitude faster than the yaml package on large files, with a nesting cap of its own that
    // stops at once on a file of a million brackets. Duplicate keys are refused.
    // maxDepth is documented in js-yaml 4.3 (README, "load options"); @types/js-yaml 4.0.9 predates it.
    const options: LoadOptions & { maxDepth: number } = { maxDepth: maxSpecDepth, filename: source };
    data = load(text, options);
  } catch (error) {
    if (error instanceof YAMLException) {
      if (error.reason.startsWith('nesting exceeded maxDepth')) throw whole(source, tooDeep);
      const where = error.mark ? ` at line ${error.mark.line + 1}, column ${error.mark.column + 1}` : '';
      throw whole(source, `expected YAML or JSON: ${error.reason}${where}`);
    }
    if (error instanceof RangeError) throw whole(source, tooDeep);
    throw whole(source, `expected YAML or JSON: ${(error as Error).message}`);
  }
  const { depth, nodes } = measure(data);
  if (depth > maxSpecDepth) throw whole(source, tooDeep);
  // Aliases are shared, so a "billion laughs" file is small until something walks it.
  if (nodes > maxSpecNodes)
    throw whole(
      source,
      `expected YAML or JSON of at most ${maxSpecNodes.toLocaleString('en-US')} values once aliases are expanded`,
    );
  if (overrides.version !== undefined && data !== null && typeof data === 'object' && !Array.isArray(data))
    data = { ...data, version: overrides.version };
  try {
    return parseRolloutSpec(data, source);
  } catch (error) {
    if (!(error instanceof SpecError) || overrides.version === undefined) throw error;
    throw new SpecError(
      source,
      error.problems.map((p) => (p.path === 'version' ? { ...p, path: 'version (from --version)' } : p)),
    );
  }
}

/**
 * Reads a spec file, refusing anything but a regular file: a FIFO, a device or a directory never blocks the CLI or
 * feeds it without end. The size is counted while reading (a file may grow after any stat), and reading stops one
 * byte past the limit.
 */
export async function readSpecFile(path: string): Promise<string> {
  let handle;
  try {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, for ever.
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (error) {
    throw whole(path, `expected a readable file: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) {
      const kind = stats.isDirectory()
        ? 'a directory'
        : stats.isFIFO()
          ? 'a FIFO'
          : stats.isSocket()
            ? 'a socket'
            : 'a device';
      throw whole(path, `expected a regular file, got ${kind}`);
    }
    const chunks: Buffer[] = [];
    let total = 0;
    const buffer = Buffer.alloc(64 * 1024);
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > maxSpecBytes)
        throw whole(path, `expected at most ${maxSpecBytes} bytes, the file has more`);
      chunks.push(Buffer.from(buffer.subarray(0, bytesRead)));
    }
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
    } catch {
      throw whole(path, 'expected UTF-8 text (YAML or JSON)');
    }
  } finally {
    await handle.close();
  }
}

export async function loadRolloutSpecFile(path: string, overrides: SpecOverrides = {}): Promise<RolloutSpec> {
  return parseRolloutSpecText(await readSpecFile(path), path, overrides);
}
