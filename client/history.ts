import type { Client, WorkflowHandle } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { defaultPayloadConverter } from '@temporalio/common';

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;
export type HistoryEvent = NonNullable<History['events']>[number];
export type Timestamp =
  | { seconds?: { toString(): string } | number | null; nanos?: number | null }
  | null
  | undefined;

/** One line of a rollout's history: a step (activity) with its times and outcome, or an operator command. */
export interface HistoryEntry {
  readonly at: string;
  readonly kind: 'step' | 'command' | 'rollout';
  /** "drain web-3", "scale web-v2 up to 3", "pause by alice@laptop: watch metrics". */
  readonly what: string;
  readonly outcome: string;
  readonly durationMs?: number;
}

/** What the SDK's core records of a local activity in its marker (snake case, as core writes it). */
export interface LocalActivityMarker {
  readonly activity_type?: string;
  readonly original_schedule_time?: Timestamp;
  readonly complete_time?: Timestamp;
}

/** Milliseconds since the epoch of a history timestamp. */
export const toMs = (ts: Timestamp): number =>
  ts ? Number(ts.seconds?.toString() ?? 0) * 1000 + Math.floor((ts.nanos ?? 0) / 1e6) : 0;

function decode(payload: Payload | null | undefined): unknown {
  if (!payload) return undefined;
  try {
    return defaultPayloadConverter.fromPayload(payload);
  } catch {
    return undefined;
  }
}

/** A local activity's marker, as the SDK's core records it (its type and times); undefined for any other event. */
export function localActivityMarker(event: HistoryEvent): LocalActivityMarker | undefined {
  const marker = event.markerRecordedEventAttributes;
  if (marker?.markerName !== 'core_local_activity') return undefined;
  return (decode(marker.details?.data?.payloads?.[0]) as LocalActivityMarker | undefined) ?? {};
}

function describeCommand(name: string, payloads: Payload[] | null | undefined): string {
  const args = decode(payloads?.[0]) as { by?: string; reason?: string; full?: boolean } | undefined;
  return `${name}${args?.full ? ' --full' : ''}${args?.by ? ` by ${args.by}` : ''}${args?.reason ? `: ${args.reason}` : ''}`;
}

/**
 * Every event of one rollout, oldest first. A rollout of a large fleet continues as new when a run's history
 * fills up: the runs before and after `runId` (the latest when absent) are linked through their first and last
 * events, and read in order.
 */
export async function fetchRolloutEvents(
  client: Client,
  workflowId: string,
  runId?: string,
): Promise<HistoryEvent[]> {
  const read = async (id: string | undefined) =>
    (await client.workflow.getHandle(workflowId, id).fetchHistory()).events ?? [];
  const runs: HistoryEvent[][] = [await read(runId)];
  for (;;) {
    const previous = runs[0][0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId;
    if (!previous) break;
    runs.unshift(await read(previous));
  }
  for (;;) {
    const next = runs.at(-1)?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
    if (!next) break;
    runs.push(await read(next));
  }
  return runs.flat();
}

/**
 * Reads a rollout's workflow history as an operator wants it: each step with the summary the workflow gave it
 * (so "drain web-3", not "drainServer"), when it started, how long it took and how it ended, attempts included;
 * and every operator command with who sent it and why.
 */
export function rolloutHistory(events: readonly HistoryEvent[]): HistoryEntry[] {
  const entries: HistoryEntry[] = [];
  const scheduled = new Map<string, { at: number; what: string }>();
  const iso = (ms: number) => new Date(ms).toISOString();
  for (const event of events) {
    const at = toMs(event.eventTime as Timestamp);
    const id = String(event.eventId ?? '');
    if (event.workflowExecutionStartedEventAttributes) {
      const started = event.workflowExecutionStartedEventAttributes;
      const by = decode(started.memo?.fields?.startedBy);
      const via = decode(started.memo?.fields?.via);
      const verb = via === 'retry' ? 'retried' : via === 'undo' ? 'undone' : 'started';
      entries.push({
        at: iso(at),
        kind: 'rollout',
        what: started.continuedExecutionRunId
          ? 'continued in a new run'
          : `${verb}${typeof by === 'string' ? ` by ${by}` : ''}`,
        outcome: '',
      });
    } else if (event.markerRecordedEventAttributes && localActivityMarker(event)) {
      // A local activity runs inside the workflow task and leaves one marker: its summary, times and outcome.
      const marker = event.markerRecordedEventAttributes;
      const data = localActivityMarker(event);
      const summary = decode(event.userMetadata?.summary);
      const scheduledAt = data?.original_schedule_time ? toMs(data.original_schedule_time) : at;
      const doneAt = data?.complete_time ? toMs(data.complete_time) : at;
      entries.push({
        at: iso(scheduledAt),
        kind: 'step',
        what: typeof summary === 'string' ? summary : (data?.activity_type ?? 'local activity'),
        outcome: marker.failure ? `failed: ${marker.failure.message ?? ''}` : 'ok',
        durationMs: Math.max(0, doneAt - scheduledAt),
      });
    } else if (event.activityTaskScheduledEventAttributes) {
      const summary = decode(event.userMetadata?.summary);
      const what =
        typeof summary === 'string'
          ? summary
          : (event.activityTaskScheduledEventAttributes.activityType?.name ?? '?');
      scheduled.set(id, { at, what });
    } else if (
      event.activityTaskCompletedEventAttributes ||
      event.activityTaskFailedEventAttributes ||
      event.activityTaskTimedOutEventAttributes ||
      event.activityTaskCanceledEventAttributes
    ) {
      const attributes =
        event.activityTaskCompletedEventAttributes ??
        event.activityTaskFailedEventAttributes ??
        event.activityTaskTimedOutEventAttributes ??
        event.activityTaskCanceledEventAttributes;
      const step = scheduled.get(String(attributes?.scheduledEventId ?? ''));
      if (!step) continue;
      const outcome = event.activityTaskCompletedEventAttributes
        ? 'ok'
        : event.activityTaskFailedEventAttributes
          ? `failed: ${event.activityTaskFailedEventAttributes.failure?.message ?? ''}`
          : event.activityTaskTimedOutEventAttributes
            ? 'timed out'
            : 'cancelled';
      entries.push({ at: iso(step.at), kind: 'step', what: step.what, outcome, durationMs: at - step.at });
    } else if (event.workflowExecutionUpdateAcceptedEventAttributes) {
      const input = event.workflowExecutionUpdateAcceptedEventAttributes.acceptedRequest?.input;
      entries.push({
        at: iso(at),
        kind: 'command',
        what: describeCommand(input?.name ?? '?', input?.args?.payloads),
        outcome: 'accepted',
      });
    } else if (event.workflowExecutionSignaledEventAttributes) {
      const signal = event.workflowExecutionSignaledEventAttributes;
      entries.push({
        at: iso(at),
        kind: 'command',
        what: describeCommand(signal.signalName ?? '?', signal.input?.payloads),
        outcome: 'signalled',
      });
    } else if (event.workflowExecutionCompletedEventAttributes) {
      const result = decode(event.workflowExecutionCompletedEventAttributes.result?.payloads?.[0]) as
        | { phase?: string; reason?: string }
        | undefined;
      entries.push({
        at: iso(at),
        kind: 'rollout',
        what: 'finished',
        outcome: `${result?.phase ?? 'completed'}${result?.reason ? `: ${result.reason}` : ''}`,
      });
    } else if (event.workflowExecutionFailedEventAttributes) {
      entries.push({
        at: iso(at),
        kind: 'rollout',
        what: 'finished',
        outcome: `failed: ${event.workflowExecutionFailedEventAttributes.failure?.message ?? ''}`,
      });
    } else if (event.workflowExecutionTerminatedEventAttributes) {
      entries.push({ at: iso(at), kind: 'rollout', what: 'finished', outcome: 'terminated' });
    }
  }
  return entries;
}

export function renderHistory(entries: readonly HistoryEntry[]): string[] {
  const width = Math.max(...entries.map((e) => e.what.length), 4);
  return entries.map((e) => {
    const took = e.durationMs === undefined ? '' : `${(e.durationMs / 1000).toFixed(1)}s`.padStart(8);
    return `${e.at.slice(11, 23)}  ${e.what.padEnd(width)}  ${took.padStart(8)}  ${e.outcome.split('\n')[0] ?? ''}`;
  });
}
