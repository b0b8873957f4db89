import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { WorkflowHandle } from '@temporalio/client';
import type { RolloutSpecInput } from '../../spec';
import { promoteUpdate, statusQuery } from '../../workflows/messages';
import type { rolloutWorkflow } from '../../workflows';

export const examplesDir = join(__dirname, '..', '..', 'examples');

/** The example files for one target kind, by file name. */
export const exampleFiles = (kind: 'fleet' | 'kubernetes'): string[] =>
  readdirSync(examplesDir).filter((f) => f.startsWith(`${kind}-`) && f.endsWith('.yaml'));

/** Waits an example writes for production, and what a test waits instead. */
const shortWaits: Record<string, string> = {
  pauseBetweenBatches: '200ms',
  scaleDownDelay: '1s',
  window: '4s',
  duration: '1s',
};

function shorten(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(shorten);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, inner]) => [
      key,
      typeof inner === 'string' && key in shortWaits ? shortWaits[key] : shorten(inner),
    ]),
  );
}

/**
 * An example spec made runnable here: its strategy, drain, verification and failure budget as written, on a
 * local target, with its waits shortened, its pre-step's program swapped for /bin/echo (same arguments, so the
 * placeholders are still filled), and without notifications (tested on their own).
 */
export function localExample(
  file: string,
  target: (written: RolloutSpecInput['target']) => RolloutSpecInput['target'],
): RolloutSpecInput {
  const example = parse(readFileSync(join(examplesDir, file), 'utf8')) as RolloutSpecInput;
  const strategy = shorten(example.strategy) as RolloutSpecInput['strategy'];
  if (strategy && 'preStep' in strategy && strategy.preStep)
    strategy.preStep = { ...strategy.preStep, argv: ['/bin/echo', ...strategy.preStep.argv.slice(1)] };
  const local: RolloutSpecInput = { ...example, target: target(example.target), strategy };
  delete local.notify;
  delete local.progressDeadline;
  return local;
}

/** Promotes the rollout at each approval gate or pause it reaches, as an operator would, until it ends. */
export async function promoteUntilDone(handle: WorkflowHandle<typeof rolloutWorkflow>) {
  let done = false;
  const result = handle.result().finally(() => (done = true));
  // A rollout that fails rejects before the loop below returns it: handled here, so the process does not crash.
  result.catch(() => undefined);
  while (!done) {
    const status = await handle.query(statusQuery).catch(() => undefined);
    if (status?.phase === 'paused' && status.waiting?.for === 'promote')
      await handle.executeUpdate(promoteUpdate, { args: [{ by: 'examples test' }] }).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return result;
}
