import assert from 'node:assert/strict';
import type { IncomingMessage, Server } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { InMemoryFleet } from '../../activities/fakes/in-memory-fleet';
import { delay } from '../../infra/processes';
import type { RolloutSpecInput } from '../../spec';
import type { rolloutWorkflow } from '../../workflows';
import { promoteUpdate, statusQuery } from '../../workflows/messages';
import { inMemoryFleetSpec, serverNames } from '../helpers/specs';
import type { TestTemporal } from '../helpers/temporal';
import { connectTestTemporal } from '../helpers/temporal';
import { startRolloutInProcess } from '../helpers/rollout';

/** A real HTTP receiver: records every POST body, and answers 500 to the first `failFirst` of them. */
async function startReceiver(failFirst = 0) {
  const received: unknown[] = [];
  let calls = 0;
  const server: Server = createServer((request: IncomingMessage, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      calls++;
      if (calls <= failFirst) {
        response.writeHead(500).end('try again');
        return;
      }
      received.push(JSON.parse(body));
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return {
    url,
    received,
    calls: () => calls,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

let temporal: TestTemporal;
before(async () => {
  temporal = await connectTestTemporal();
});
after(async () => temporal.close());

async function runWithWorker(
  name: string,
  overrides: Partial<RolloutSpecInput>,
  during: (
    handle: Awaited<ReturnType<typeof temporal.client.workflow.start<typeof rolloutWorkflow>>>,
  ) => Promise<void> = () => Promise.resolve(),
) {
  const fleet = new InMemoryFleet(serverNames(2), 'v1');
  const spec = inMemoryFleetSpec(2, { strategy: { type: 'rolling', batchSize: 1 }, ...overrides }, name);
  const { handle, stop } = await startRolloutInProcess(temporal, fleet.deps(), spec);
  try {
    await during(handle);
    return { result: await handle.result(), handle };
  } finally {
    await stop();
  }
}

describe('webhook notifications (real HTTP receiver, real Temporal)', () => {
  it('posts started, paused, promoted and succeeded, retrying a receiver that fails at first', async () => {
    const receiver = await startReceiver(1);
    try {
      const { result } = await runWithWorker(
        'notify-json',
        {
          strategy: { type: 'rolling', batchSize: 1, pauses: [{ after: 1 }] },
          notify: { webhook: { url: receiver.url } },
        },
        async (handle) => {
          for (let i = 0; (await handle.query(statusQuery)).phase !== 'paused'; i++) {
            assert.ok(i < 300, 'never paused');
            await delay(50);
          }
          await handle.executeUpdate(promoteUpdate, { args: [{ by: 'gina' }] });
        },
      );
      assert.equal(result.phase, 'succeeded');
      const events = receiver.received as Array<{
        event: string;
        target: string;
        fromVersion?: string;
        toVersion: string;
      }>;
      assert.deepEqual(
        events.map((e) => e.event),
        ['started', 'paused', 'promoted', 'succeeded'],
      );
      assert.ok(events.every((e) => e.target === 'notify-json' && e.toVersion === 'v2'));
      assert.equal(events[3]?.fromVersion, 'v1');
      assert.equal(receiver.calls(), 5, 'the first POST failed with 500 and was sent again');
    } finally {
      await receiver.stop();
    }
  });

  it('sends Slack-compatible text to a URL read from the worker environment, never written to the history', async () => {
    const receiver = await startReceiver();
    process.env.BATON_TEST_SLACK_URL = receiver.url;
    try {
      const { result, handle } = await runWithWorker('notify-slack', {
        version: 'v3',
        notify: {
          webhook: {
            urlFromEnv: 'BATON_TEST_SLACK_URL',
            format: 'slack',
            events: ['succeeded', 'rolled-back'],
          },
        },
      });
      assert.equal(result.phase, 'succeeded');
      assert.deepEqual(receiver.received, [
        { text: 'Rollout of *notify-slack* (rolling, v1 → v3) succeeded' },
      ]);
      const history = JSON.stringify(await handle.fetchHistory());
      assert.ok(
        !history.includes(receiver.url.split('//')[1] ?? receiver.url),
        'the URL is not in the history',
      );
    } finally {
      delete process.env.BATON_TEST_SLACK_URL;
      await receiver.stop();
    }
  });
});
