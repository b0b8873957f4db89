import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { defaultPayloadConverter } from '@temporalio/common';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import type { HistoryEvent } from '../../client/history';
import { renderHistory, rolloutHistory } from '../../client/history';

const events = (name: string): HistoryEvent[] =>
  historyFromJSON(
    JSON.parse(readFileSync(join(__dirname, '..', 'replay', 'histories', `${name}.json`), 'utf8')),
  ).events ?? [];

describe('baton history', () => {
  it('shows local-activity steps (a bulk detach, attach, handover) with their summaries, times and outcomes', () => {
    const entries = rolloutHistory(events('rolling-bulk-one-fails'));
    const local = entries.filter((e) => /^(detach|attach) \d+ servers/.test(e.what));
    assert.ok(local.length >= 4, JSON.stringify(entries.map((e) => e.what)));
    assert.ok(local.every((e) => e.kind === 'step' && e.outcome === 'ok' && e.durationMs !== undefined));
    assert.ok(
      entries.some((e) => e.what === 'detach 10 servers (web-1 … web-10)'),
      'the summary the workflow gave it',
    );
    const handover = rolloutHistory(events('rolling-bulk-handover'));
    assert.ok(handover.some((e) => /^attach \d+ servers .*, then detach \d+ servers/.test(e.what)));
    // In order of time, as the rollout happened.
    const times = entries.map((e) => e.at);
    assert.deepEqual([...times].sort(), times);
  });

  it('says who started, retried or undid a rollout, from its memo', () => {
    const history = events('rolling-succeeds');
    const started = history[0];
    assert.ok(started?.workflowExecutionStartedEventAttributes);
    for (const [via, verb] of [
      ['start', 'started'],
      ['retry', 'retried'],
      ['undo', 'undone'],
    ] as const) {
      const withMemo: HistoryEvent = {
        ...started,
        workflowExecutionStartedEventAttributes: {
          ...started.workflowExecutionStartedEventAttributes,
          memo: {
            fields: {
              startedBy: defaultPayloadConverter.toPayload('alice@laptop'),
              via: defaultPayloadConverter.toPayload(via),
            },
          },
        },
      };
      const [first] = rolloutHistory([withMemo, ...history.slice(1)]);
      assert.equal(first?.what, `${verb} by alice@laptop`);
      assert.match(renderHistory([first])[0] ?? '', new RegExp(`${verb} by alice@laptop`));
    }
    assert.equal(rolloutHistory(history)[0]?.what, 'started', 'a rollout started without the CLI');
  });
});
