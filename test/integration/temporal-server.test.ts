import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { InMemoryFleet } from '../../activities/fakes/in-memory-fleet';
import { startTemporalDevServer } from '../../infra/temporal-server';
import { createBatonWorker } from '../../worker/create-worker';
import type { rolloutWorkflow } from '../../workflows';
import { searchAttributes, statusQuery } from '../../workflows/messages';
import { delay } from '../../infra/processes';
import { runToEnd } from '../helpers/process';
import { inMemoryFleetSpec, serverNames } from '../helpers/specs';
import { workflowBundle } from '../helpers/temporal';

const root = join(__dirname, '..', '..');

describe('the local Temporal dev server (built from the Go module proxy)', () => {
  it("registers Baton's search attributes and keeps rollouts in its SQLite file across a restart", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'baton-restart-'));
    const options = {
      dbFile: join(dir, 'temporal.db'),
      logFile: join(dir, 'temporal.log'),
      namespace: 'restart',
    };
    let server = await startTemporalDevServer(options);
    const port = Number(server.address.split(':')[1]);
    try {
      const connection = await Connection.connect({ address: server.address });
      const nativeConnection = await NativeConnection.connect({ address: server.address });
      const client = new Client({ connection, namespace: 'restart' });
      const fleet = new InMemoryFleet(serverNames(2), 'v1');
      const worker = await createBatonWorker({
        connection: nativeConnection,
        namespace: 'restart',
        taskQueue: 'restart',
        deps: fleet.deps(),
        workflowBundle: await workflowBundle(),
      });
      const result = await worker.runUntil(
        client.workflow.execute<typeof rolloutWorkflow>('rolloutWorkflow', {
          args: [inMemoryFleetSpec(2, {}, 'restart-web')],
          taskQueue: 'restart',
          workflowId: 'rollout/restart-web',
          typedSearchAttributes: [{ key: searchAttributes.target, value: 'restart-web' }],
        }),
      );
      assert.equal(result.phase, 'succeeded');
      await nativeConnection.close();
      await connection.close();

      await server.stop();
      server = await startTemporalDevServer({ ...options, port });
      const after = new Client({
        connection: await Connection.connect({ address: server.address }),
        namespace: 'restart',
      });
      const description = await after.workflow.getHandle('rollout/restart-web').describe();
      assert.equal(description.status.name, 'COMPLETED');
      assert.equal(description.typedSearchAttributes.get(searchAttributes.phase), 'succeeded');
      assert.equal(description.typedSearchAttributes.get(searchAttributes.target), 'restart-web');
      await after.connection.close();
    } finally {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('finishes a rollout in flight across a restart of the server, the CLI saying it is unreachable meanwhile', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'baton-restart-mid-'));
    const options = {
      dbFile: join(dir, 'temporal.db'),
      logFile: join(dir, 'temporal.log'),
      namespace: 'restart',
    };
    let server = await startTemporalDevServer(options);
    const address = server.address;
    const port = Number(address.split(':')[1]);
    const nativeConnection = await NativeConnection.connect({ address });
    const fleet = new InMemoryFleet(serverNames(4), 'v1', { upgradeMs: 700 });
    const worker = await createBatonWorker({
      connection: nativeConnection,
      namespace: 'restart',
      taskQueue: 'restart-mid',
      deps: fleet.deps(),
      workflowBundle: await workflowBundle(),
    });
    const running = worker.run();
    try {
      const connection = await Connection.connect({ address });
      const client = new Client({ connection, namespace: 'restart' });
      const handle = await client.workflow.start<typeof rolloutWorkflow>('rolloutWorkflow', {
        args: [inMemoryFleetSpec(4, { strategy: { type: 'rolling', batchSize: 1 } }, 'restart-mid')],
        taskQueue: 'restart-mid',
        workflowId: 'rollout/restart-mid',
      });
      while (!(await handle.query(statusQuery)).servers.some((s) => s.step === 'done')) await delay(50);
      await connection.close();

      // The server goes away mid-rollout, its SQLite file kept.
      await server.stop();
      const env = { ...process.env, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: 'restart', NO_COLOR: '1' };
      const status = await runToEnd(
        process.execPath,
        [join(root, 'bin', 'baton.js'), 'status', 'restart-mid'],
        { env },
      );
      assert.equal(status.code, 1);
      assert.match(status.stderr, new RegExp(`cannot reach Temporal at ${address}`));
      assert.doesNotMatch(status.stderr, /\n\s+at /, 'no stack trace');
      await delay(2_000);

      server = await startTemporalDevServer({ ...options, port });
      const again = new Client({ connection: await Connection.connect({ address }), namespace: 'restart' });
      const result = await again.workflow.getHandle<typeof rolloutWorkflow>('rollout/restart-mid').result();
      assert.equal(result.phase, 'succeeded');
      assert.ok(serverNames(4).every((name) => fleet.version(name) === 'v2'));
      assert.ok(
        serverNames(4).every(
          (name) => fleet.timeline(name).filter((step) => step === 'upgrade:v2').length === 1,
        ),
        'each server upgraded once',
      );
      await again.connection.close();
    } finally {
      worker.shutdown();
      await running.catch(() => undefined);
      await nativeConnection.close();
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
