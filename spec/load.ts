import { readFile, stat } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { SpecError, problemsFromZod } from './errors';
import type { RolloutSpec } from './rollout';
import { rolloutSpecSchema } from './rollout';

/** Larger specs are refused before parsing: an inventory of 10,000 servers is well under this. */
export const maxSpecBytes = 4 * 1024 * 1024;

/** Validates a spec already in memory (from a file, flags or a test); throws SpecError naming every bad field. */
export function parseRolloutSpec(input: unknown, source = 'spec'): RolloutSpec {
  const result = rolloutSpecSchema.safeParse(input);
  if (!result.success) throw new SpecError(source, problemsFromZod(result.error));
  return result.data;
}

/** Parses YAML or JSON text (JSON is YAML) into a validated spec. */
export function parseRolloutSpecText(text: string, source = 'spec'): RolloutSpec {
  if (Buffer.byteLength(text) > maxSpecBytes) {
    throw new SpecError(source, [
      { path: '', message: `expected at most ${maxSpecBytes} bytes, got ${Buffer.byteLength(text)}` },
    ]);
  }
  const document = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (document.errors.length > 0) {
    throw new SpecError(
      source,
      document.errors.map((e) => ({
        path: '',
        message: `expected YAML or JSON: ${e.message.split('\n')[0] ?? e.code}`,
      })),
    );
  }
  let data: unknown;
  try {
    // Aliases are resolved here: an unknown one, or too many (a "billion laughs" file), is bad input too.
    data = document.toJS({ maxAliasCount: 100 });
  } catch (error) {
    throw new SpecError(source, [
      { path: '', message: `expected YAML or JSON: ${(error as Error).message}` },
    ]);
  }
  return parseRolloutSpec(data, source);
}

export async function loadRolloutSpecFile(path: string): Promise<RolloutSpec> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (error) {
    throw new SpecError(path, [
      { path: '', message: `expected a readable file: ${(error as Error).message}` },
    ]);
  }
  if (size > maxSpecBytes) {
    throw new SpecError(path, [
      { path: '', message: `expected at most ${maxSpecBytes} bytes, the file has ${size}` },
    ]);
  }
  return parseRolloutSpecText(await readFile(path, 'utf8'), path);
}
