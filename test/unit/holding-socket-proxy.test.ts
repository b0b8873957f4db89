import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HaproxyRuntimeApi } from '../../activities/haproxy/runtime-api';
import type { HoldingSocketProxy } from '../helpers/faults';
import { startHoldingSocketProxy } from '../helpers/faults';

/** A stand-in for HAProxy's admin socket: answers each command with what it got, and notes when. */
let dir: string;
const received: Array<{ command: string; at: number }> = [];
const upstream = createServer({ allowHalfOpen: true }, (socket) => {
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  socket.on('end', () => {
    received.push({ command: text.trim(), at: Date.now() });
    socket.end(`got ${text.trim()}\n`);
  });
});
let proxy: HoldingSocketProxy;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'baton-proxy-'));
  await new Promise<void>((resolve) => upstream.listen(join(dir, 'admin.sock'), resolve));
  proxy = await startHoldingSocketProxy(join(dir, 'admin.sock'), join(dir, 'held.sock'));
});
after(async () => {
  await proxy.close();
  await new Promise((resolve) => upstream.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

describe('the holding socket proxy (a fault helper)', () => {
  it('passes commands straight through until armed', async () => {
    const api = new HaproxyRuntimeApi(proxy.path);
    const started = Date.now();
    assert.equal(await api.send('show info'), 'got show info\n');
    assert.ok(Date.now() - started < 500);
  });

  it('holds the matching command back for its time, tells at once, and passes the others', async () => {
    const api = new HaproxyRuntimeApi(proxy.path);
    const held = proxy.hold(/state drain/, 700);
    const sentAt = Date.now();
    const answer = api.send('set server web/web-2 state drain');
    assert.equal(await held, 'set server web/web-2 state drain');
    const toldAfter = Date.now() - sentAt;
    assert.ok(toldAfter < 300, `told after ${toldAfter} ms`);
    // Another command is not held behind it.
    assert.equal(await api.send('show stat'), 'got show stat\n');
    assert.equal(await answer, 'got set server web/web-2 state drain\n');
    const arrived = received.find((r) => r.command === 'set server web/web-2 state drain');
    assert.ok(
      arrived && arrived.at - sentAt >= 690,
      `HAProxy got it ${arrived ? arrived.at - sentAt : '-'} ms after`,
    );
  });

  it('passes a held command on even when its sender is gone, as a command sent before a kill lands', async () => {
    const held = proxy.hold(/weight/, 300);
    const socket = createConnection(proxy.path, () => socket.end('set server web/web-1 weight 34\n'));
    socket.on('error', () => undefined);
    await held;
    socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.ok(received.some((r) => r.command === 'set server web/web-1 weight 34'));
  });
});
