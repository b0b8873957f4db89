import type { z } from 'zod';
import { printable } from './text';

export interface SpecProblem {
  /** Where the problem is, as a dotted path: "target.servers[2].name". */
  readonly path: string;
  readonly message: string;
}

/** A file wrong everywhere would otherwise print megabytes: the first problems are enough to start fixing. */
const shownProblems = 20;
const shorten = (text: string) => (text.length > 300 ? `${text.slice(0, 300)}…` : text);

/** Bad input: every problem names the field it is about and what was expected. */
export class SpecError extends Error {
  override readonly name = 'SpecError';
  constructor(
    readonly source: string,
    readonly problems: readonly SpecProblem[],
  ) {
    // Messages quote what the user wrote, which may hold a terminal escape or a bidirectional override.
    super(
      printable(
        `${source} is not a valid rollout spec:\n${problems
          .slice(0, shownProblems)
          .map((p) => `  ${p.path || '(top level)'}: ${shorten(p.message.replace(/\n/g, ' '))}`)
          .join(
            '\n',
          )}${problems.length > shownProblems ? `\n  … and ${problems.length - shownProblems} more` : ''}`,
      ),
    );
  }
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}

export function problemsFromZod(error: z.ZodError): SpecProblem[] {
  return error.issues.map((issue) => ({ path: formatPath(issue.path), message: issue.message }));
}
