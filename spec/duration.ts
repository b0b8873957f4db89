import { z } from 'zod';

const units = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
const durationPattern = /^(\d{1,12}(?:\.\d{1,9})?)(ms|s|m|h)$/;

/**
 * The longest duration a spec may give: a year. Every wait of a rollout (a gate, a drain, a timed pause) fits many
 * times over, and it is exact in JavaScript and far inside what a Temporal timer or activity timeout holds, where
 * "99999999999h" would overflow them.
 */
export const maxDurationMs = 365 * 24 * 3_600_000;

/** Parses "250ms", "30s", "2m", "1.5h" into milliseconds; undefined when the text is not a duration. */
export function parseDurationMs(text: string): number | undefined {
  const match = durationPattern.exec(text.trim());
  if (!match) return undefined;
  return Math.round(Number(match[1]) * units[match[2] as keyof typeof units]);
}

const expected = 'expected a duration such as "500ms", "30s", "2m" or "1h"';

/** A duration as people write it in a spec ("30s", "2m", "500ms"), carried inside Baton as milliseconds. */
export const duration = z.string({ error: expected }).transform((text, ctx) => {
  const ms = parseDurationMs(text);
  if (ms === undefined) {
    const shown = text.length > 40 ? `${text.slice(0, 40)}…` : text;
    ctx.addIssue({ code: 'custom', message: `${expected}, got "${shown}"` });
    return z.NEVER;
  }
  if (ms > maxDurationMs) {
    ctx.addIssue({ code: 'custom', message: `expected at most 8760h (a year), got "${text}"` });
    return z.NEVER;
  }
  return ms;
});
