import type { z } from 'zod';

export interface SpecProblem {
  /** Where the problem is, as a dotted path: "target.servers[2].name". */
  readonly path: string;
  readonly message: string;
}

/** Bad input: every problem names the field it is about and what was expected. */
export class SpecError extends Error {
  override readonly name = 'SpecError';
  constructor(
    readonly source: string,
    readonly problems: readonly SpecProblem[],
  ) {
    super(
      `${source} is not a valid rollout spec:\n${problems.map((p) => `  ${p.path || '(top level)'}: ${p.message}`).join('\n')}`,
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
