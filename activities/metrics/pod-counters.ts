import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { z } from 'zod';
import type { PodMetrics } from '../../spec/rollout';
import type { ServerCounters } from '../../spec';

const sampleValue = z.string().transform((text, ctx) => {
  const value = Number(text);
  if (!Number.isFinite(value)) {
    ctx.addIssue({ code: 'custom', message: `expected a number, got ${JSON.stringify(text)}` });
    return z.NEVER;
  }
  return value;
});

const family = z.object({
  name: z.string(),
  type: z.string(),
  metrics: z.array(
    z.object({
      labels: z.record(z.string(), z.string()).optional(),
      value: sampleValue.optional(),
      sum: sampleValue.optional(),
      count: sampleValue.optional(),
    }),
  ),
});

const families = z.array(family);
type Family = z.infer<typeof family>;

/**
 * A pod's cumulative request counters, from its metrics page: the answered requests and their 5xx share from the
 * `requests` counter, and the time they took from the `duration` summary or histogram (in seconds). Throws, naming
 * the metric, when the page lacks one the spec names or holds a value that is not a number.
 */
export function podCounters(text: string, metrics: PodMetrics): ServerCounters {
  // The parser drops a last line that has no newline after it.
  const parsed = families.safeParse(parsePrometheusTextFormat(text.endsWith('\n') ? text : `${text}\n`));
  if (!parsed.success)
    throw new Error(`the metrics page is not in Prometheus' text format: ${parsed.error.message}`);
  const byName = new Map(parsed.data.map((f) => [f.name, f]));
  // OpenMetrics names a counter's family without the _total its samples carry; accept either spelling.
  const find = (name: string): Family | undefined =>
    byName.get(name) ?? byName.get(name.endsWith('_total') ? name.slice(0, -6) : `${name}_total`);

  const requests = find(metrics.requests);
  if (!requests) throw new Error(`the metrics page has no ${metrics.requests}`);
  if (requests.type !== 'COUNTER' && requests.type !== 'UNTYPED')
    throw new Error(`${metrics.requests} is a ${requests.type.toLowerCase()}, expected a counter`);
  let responses = 0;
  let errors = 0;
  for (const sample of requests.metrics) {
    const value = sample.value ?? 0;
    responses += value;
    if (sample.labels?.[metrics.codeLabel]?.startsWith('5')) errors += value;
  }
  if (metrics.duration === undefined) return { responses, errors, responseTimeMs: 0 };

  const duration = find(metrics.duration);
  if (!duration) throw new Error(`the metrics page has no ${metrics.duration}`);
  if (duration.type !== 'SUMMARY' && duration.type !== 'HISTOGRAM')
    throw new Error(
      `${metrics.duration} is a ${duration.type.toLowerCase()}, expected a summary or a histogram`,
    );
  let seconds = 0;
  let timed = 0;
  for (const sample of duration.metrics) {
    seconds += sample.sum ?? 0;
    timed += sample.count ?? 0;
  }
  const totalMs = seconds * 1000;
  return {
    responses,
    errors,
    responseTimeMs: timed === 0 ? 0 : totalMs / timed,
    time: { totalMs, count: timed },
  };
}
