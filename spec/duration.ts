import { z } from 'zod';

const units = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
const durationPattern = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;

/** Parses "250ms", "30s", "2m", "1.5h" into milliseconds; undefined when the text is not a duration. */
export function parseDurationMs(text: string): number | undefined {
  const match = durationPattern.exec(text.trim());
  if (!match) return undefined;
  return Math.round(Number(match[1]) * units[match[2] as keyof typeof units]);
}

/** A duration as people write it in a spec ("30s", "2m", "500ms"), carried inside Baton as milliseconds. */
export const duration = z
  .string({ error: 'expected a duration such as "500ms", "30s", "2m" or "1h"' })
  .transform((text, ctx) => {
    const ms = parseDurationMs(text);
    if (ms === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a duration such as "500ms", "30s", "2m" or "1h", got "${text}"`,
      });
      return z.NEVER;
    }
    return ms;
  });
