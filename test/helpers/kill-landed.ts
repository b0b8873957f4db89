import type { temporal } from '@temporalio/proto';
import { localActivityMarker } from '../../client/history';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** The work a kill is meant to cut off: activities of a step, by type, and/or a durable timer (a wait, a window). */
export interface StepWork {
  readonly activities?: RegExp;
  readonly timer?: true;
  /**
   * A state that lasts until later work ends it (a retired server, out of rotation until it is destroyed; an old set
   * switched away from, until it is retired): the kill landed in it when that work was done by the next worker.
   */
  readonly endedBy?: RegExp;
}

export interface KillLanding {
  readonly landed: boolean;
  /** What in the history shows it, or why it does not. */
  readonly evidence: string;
}

function millis(event: HistoryEvent): number {
  const time = event.eventTime;
  return Number(time?.seconds ?? 0) * 1000 + Math.floor((time?.nanos ?? 0) / 1e6);
}

const id = (value: unknown) => Number(value ?? 0);

/**
 * Whether a worker killed at `killedAt` (ms) was inside a step, read from the rollout's history:
 * - an activity of the step, scheduled before the kill, that then ran a second attempt or was completed by another
 *   worker than `killed` (its identity): it was in flight, and the next worker finished it;
 * - a local activity of the step (run inside a workflow task) whose workflow task timed out after the kill and was
 *   run again, its marker recorded by another worker;
 * - the workflow task that began the step (the status already showed it, its first activity not yet asked for)
 *   timed out after the kill, and another worker's run of it asked for the step's activity;
 * - an activity of the step completed just before the kill, and the workflow task that would take it in timed out
 *   after the kill: the workflow had not yet taken the step as done;
 * - a timer of the step, started before the kill and fired after it;
 * - for a state ended by later work (`endedBy`), that work done by another worker after the kill.
 * A kill between two steps, or after the step's work was done, shows none of these.
 */
export function killLanded(
  events: readonly HistoryEvent[],
  options: { killedAt: number; killed: string; work: StepWork },
): KillLanding {
  const { killedAt, killed, work } = options;
  const tried: KillLanding[] = [];
  if (work.timer) tried.push(timerLanded(events, killedAt));
  if (work.activities) tried.push(activityLanded(events, { killedAt, killed, activities: work.activities }));
  if (work.endedBy) tried.push(endedAfter(events, { killedAt, killed, activities: work.endedBy }));
  return (
    tried.find((landing) => landing.landed) ?? {
      landed: false,
      evidence: tried.map((landing) => landing.evidence).join('; ') || 'nothing to look for',
    }
  );
}

function endedAfter(
  events: readonly HistoryEvent[],
  options: { killedAt: number; killed: string; activities: RegExp },
): KillLanding {
  const types = new Map<number, string>();
  for (const event of events) {
    const type = event.activityTaskScheduledEventAttributes?.activityType?.name;
    if (type) types.set(id(event.eventId), type);
    const completed = event.activityTaskCompletedEventAttributes;
    const completedType = completed ? types.get(id(completed.scheduledEventId)) : undefined;
    if (
      completed &&
      completedType &&
      options.activities.test(completedType) &&
      millis(event) > options.killedAt
    ) {
      const by = completed.identity ?? '';
      return by !== options.killed
        ? {
            landed: true,
            evidence: `${completedType}, which ends the state, was done after the kill by ${by}`,
          }
        : { landed: false, evidence: `${completedType} was done by the killed worker` };
    }
  }
  return { landed: false, evidence: `nothing matching ${options.activities} was done after the kill` };
}

function timerLanded(events: readonly HistoryEvent[], killedAt: number): KillLanding {
  const started = new Map<string, number>();
  for (const event of events) {
    const timerId = event.timerStartedEventAttributes?.timerId;
    if (timerId) started.set(timerId, millis(event));
    const fired = event.timerFiredEventAttributes?.timerId;
    const startedAt = fired ? started.get(fired) : undefined;
    if (fired && startedAt !== undefined && startedAt < killedAt && millis(event) > killedAt)
      return { landed: true, evidence: `timer ${fired} started before the kill and fired after it` };
  }
  return { landed: false, evidence: 'no timer was running at the kill' };
}

function activityLanded(
  events: readonly HistoryEvent[],
  options: { killedAt: number; killed: string; activities: RegExp },
): KillLanding {
  const { killedAt, killed } = options;
  const work = { activities: options.activities };
  const scheduled = new Map<number, { type: string; at: number }>();
  const attempts = new Map<number, number>();
  const workflowTaskIdentity = new Map<number, string>();
  let cutTaskAt: number | undefined;
  let scheduledAfterCut = false;
  let stepDoneUnseen: string | undefined;
  for (const event of events) {
    const eventId = id(event.eventId);
    const type = event.activityTaskScheduledEventAttributes?.activityType?.name;
    if (type) scheduled.set(eventId, { type, at: millis(event) });
    // The first activity the rollout asked for once the cut-off workflow task ran again: the step that task began.
    if (type && cutTaskAt !== undefined && !scheduledAfterCut) {
      scheduledAfterCut = true;
      const by =
        workflowTaskIdentity.get(
          id(event.activityTaskScheduledEventAttributes?.workflowTaskCompletedEventId),
        ) ?? '';
      if (work.activities.test(type) && by !== killed)
        return {
          landed: true,
          evidence: `the workflow task that began the step (asking for ${type}) timed out after the kill, and ${by} ran it again`,
        };
    }
    const startedAttributes = event.activityTaskStartedEventAttributes;
    if (startedAttributes)
      attempts.set(id(startedAttributes.scheduledEventId), startedAttributes.attempt ?? 1);
    // A workflow task timed out after the kill while the step's completion waited in it: the worker died before
    // the workflow had taken the step as done.
    if (event.workflowTaskTimedOutEventAttributes && millis(event) > killedAt && stepDoneUnseen)
      return {
        landed: true,
        evidence: `${stepDoneUnseen} completed just before the kill, and the workflow task taking it in timed out after it`,
      };
    if (event.workflowTaskCompletedEventAttributes) stepDoneUnseen = undefined;
    const completed = event.activityTaskCompletedEventAttributes;
    if (completed) {
      const done = scheduled.get(id(completed.scheduledEventId));
      if (done && work.activities.test(done.type) && millis(event) <= killedAt) stepDoneUnseen = done.type;
      const activity = scheduled.get(id(completed.scheduledEventId));
      const attempt = attempts.get(id(completed.scheduledEventId)) ?? 1;
      if (
        activity &&
        work.activities.test(activity.type) &&
        activity.at < killedAt &&
        millis(event) > killedAt &&
        (attempt > 1 || (completed.identity ?? '') !== killed)
      )
        return {
          landed: true,
          evidence: `${activity.type} (event ${id(completed.scheduledEventId)}) was in flight at the kill and completed on attempt ${attempt} by ${completed.identity ?? '?'}`,
        };
    }
    if (event.workflowTaskTimedOutEventAttributes && millis(event) > killedAt) cutTaskAt ??= millis(event);
    const taskCompleted = event.workflowTaskCompletedEventAttributes;
    if (taskCompleted) workflowTaskIdentity.set(eventId, taskCompleted.identity ?? '');
    const marker = event.markerRecordedEventAttributes;
    if (marker && cutTaskAt !== undefined) {
      const by = workflowTaskIdentity.get(id(marker.workflowTaskCompletedEventId)) ?? '';
      const localType = localActivityMarker(event)?.activity_type;
      if (localType && work.activities.test(localType) && by !== killed)
        return {
          landed: true,
          evidence: `the workflow task running ${localType} timed out after the kill and ${by} ran it again`,
        };
    }
  }
  // Say what was in flight instead, so that a case whose kill fell elsewhere shows where.
  const inFlight = new Set<string>();
  for (const event of events) {
    const completed = event.activityTaskCompletedEventAttributes ?? event.activityTaskFailedEventAttributes;
    const activity = completed ? scheduled.get(id(completed.scheduledEventId)) : undefined;
    if (activity && activity.at < killedAt && millis(event) > killedAt) inFlight.add(activity.type);
  }
  return {
    landed: false,
    evidence: `no activity matching ${work.activities} was in flight at the kill (in flight: ${[...inFlight].join(', ') || 'none'})`,
  };
}
