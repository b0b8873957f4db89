import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultPayloadConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { killLanded as killLandedIn } from '../helpers/kill-landed';

/** The check, over events made real history events (eventIds and times as Long, as the client hands them). */
const killLanded = (events: object[], options: Parameters<typeof killLandedIn>[1]) =>
  killLandedIn(
    events.map((event) => temporal.api.history.v1.HistoryEvent.fromObject(event)),
    options,
  );

/** History events as the server writes them, at `ms` after the epoch. */
const at = (ms: number) => ({ eventTime: { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 } });
const scheduled = (eventId: number, ms: number, name: string) => ({
  eventId,
  ...at(ms),
  activityTaskScheduledEventAttributes: { activityType: { name } },
});
const started = (eventId: number, ms: number, scheduledEventId: number, attempt: number) => ({
  eventId,
  ...at(ms),
  activityTaskStartedEventAttributes: { scheduledEventId, attempt },
});
const completed = (eventId: number, ms: number, scheduledEventId: number, identity: string) => ({
  eventId,
  ...at(ms),
  activityTaskCompletedEventAttributes: { scheduledEventId, identity },
});
const killed = '100@host';
const next = '200@host';
const upgrade = { activities: /^upgradeServers?$/ };

describe('killLanded: whether a kill cut a step off, from the history', () => {
  it('an activity of the step in flight at the kill, run again by the next worker: landed', () => {
    const events = [
      scheduled(5, 1_000, 'upgradeServer'),
      started(6, 9_000, 5, 2),
      completed(7, 9_500, 5, next),
    ];
    const landing = killLanded(events, { killedAt: 2_000, killed, work: upgrade });
    assert.equal(landing.landed, true, landing.evidence);
    assert.match(landing.evidence, /upgradeServer .* attempt 2 by 200@host/);
  });

  it('the step done before the kill, by the worker then killed: not landed', () => {
    const events = [
      scheduled(5, 1_000, 'upgradeServer'),
      started(6, 1_100, 5, 1),
      completed(7, 1_900, 5, killed),
    ];
    assert.equal(killLanded(events, { killedAt: 2_000, killed, work: upgrade }).landed, false);
  });

  it('a kill between two steps: the next step scheduled after it does not count', () => {
    const events = [
      scheduled(5, 1_000, 'drainServer'),
      completed(7, 1_900, 5, killed),
      scheduled(9, 2_500, 'upgradeServer'),
      completed(11, 3_000, 9, next),
    ];
    assert.equal(killLanded(events, { killedAt: 2_000, killed, work: upgrade }).landed, false);
  });

  it('another step in flight at the kill does not count for this one', () => {
    const events = [
      scheduled(5, 1_000, 'drainServer'),
      started(6, 9_000, 5, 2),
      completed(7, 9_500, 5, next),
    ];
    assert.equal(killLanded(events, { killedAt: 2_000, killed, work: upgrade }).landed, false);
  });

  it('a timer running across the kill lands; one fired before it does not', () => {
    const timer = (ms: number, fired: number) => [
      { eventId: 3, ...at(ms), timerStartedEventAttributes: { timerId: '1' } },
      { eventId: 4, ...at(fired), timerFiredEventAttributes: { timerId: '1' } },
    ];
    assert.equal(
      killLanded(timer(1_000, 5_000), { killedAt: 2_000, killed, work: { timer: true } }).landed,
      true,
    );
    assert.equal(
      killLanded(timer(1_000, 1_500), { killedAt: 2_000, killed, work: { timer: true } }).landed,
      false,
    );
  });

  it("a local activity's workflow task timed out after the kill and run again elsewhere: landed", () => {
    const marker = (workflowTaskCompletedEventId: number) => ({
      eventId: workflowTaskCompletedEventId + 1,
      ...at(3_000),
      markerRecordedEventAttributes: {
        markerName: 'core_local_activity',
        workflowTaskCompletedEventId,
        details: {
          data: { payloads: [defaultPayloadConverter.toPayload({ activity_type: 'detachServers' })] },
        },
      },
    });
    const history = (by: string, timedOut: boolean) => [
      ...(timedOut ? [{ eventId: 8, ...at(2_500), workflowTaskTimedOutEventAttributes: {} }] : []),
      { eventId: 10, ...at(2_900), workflowTaskCompletedEventAttributes: { identity: by } },
      marker(10),
    ];
    const detach = { activities: /^detachServers?$/ };
    assert.equal(killLanded(history(next, true), { killedAt: 2_000, killed, work: detach }).landed, true);
    assert.equal(killLanded(history(next, false), { killedAt: 2_000, killed, work: detach }).landed, false);
    assert.equal(killLanded(history(killed, true), { killedAt: 2_000, killed, work: detach }).landed, false);
  });
  it('the workflow task that began the step cut off by the kill, and run again by the next worker: landed', () => {
    const history = (by: string, type: string) => [
      scheduled(5, 1_000, 'verifyServer'),
      completed(7, 1_500, 5, killed),
      { eventId: 9, ...at(12_000), workflowTaskTimedOutEventAttributes: {} },
      { eventId: 12, ...at(12_100), workflowTaskCompletedEventAttributes: { identity: by } },
      {
        eventId: 13,
        ...at(12_100),
        activityTaskScheduledEventAttributes: {
          activityType: { name: type },
          workflowTaskCompletedEventId: 12,
        },
      },
    ];
    const restore = { activities: /^upgradeServer$/ };
    assert.equal(
      killLanded(history(next, 'upgradeServer'), { killedAt: 2_000, killed, work: restore }).landed,
      true,
    );
    // The task that was cut off began another step.
    assert.equal(
      killLanded(history(next, 'attachServer'), { killedAt: 2_000, killed, work: restore }).landed,
      false,
    );
  });
  it('a state ended by later work lands when the next worker does that work, not the killed one', () => {
    const history = (by: string) => [scheduled(5, 3_000, 'destroyServer'), completed(7, 3_500, 5, by)];
    const retired = { endedBy: /^destroyServer$/ };
    assert.equal(killLanded(history(next), { killedAt: 2_000, killed, work: retired }).landed, true);
    assert.equal(killLanded(history(killed), { killedAt: 2_000, killed, work: retired }).landed, false);
    assert.equal(killLanded(history(next), { killedAt: 4_000, killed, work: retired }).landed, false);
  });
  it('a step completed just before the kill, its completion not yet taken in by the workflow: landed', () => {
    const history = (thenTaskEnds: 'timed out' | 'completed') => [
      scheduled(5, 1_000, 'switchTraffic'),
      completed(7, 1_990, 5, killed),
      thenTaskEnds === 'timed out'
        ? { eventId: 9, ...at(7_000), workflowTaskTimedOutEventAttributes: {} }
        : { eventId: 9, ...at(1_995), workflowTaskCompletedEventAttributes: { identity: killed } },
    ];
    const work = { activities: /^switchTraffic$/ };
    assert.equal(killLanded(history('timed out'), { killedAt: 2_000, killed, work }).landed, true);
    // The workflow took the switch in before the kill: the kill came after the step.
    assert.equal(killLanded(history('completed'), { killedAt: 2_000, killed, work }).landed, false);
  });
});
