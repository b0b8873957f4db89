import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { InMemoryFleet } from '../../activities/fakes/in-memory-fleet';
import { startTemporalDevServer } from '../../infra/temporal-server';
import { createBatonWorker } from '../../worker/create-worker';
import type { rolloutWorkflow } from '../../workflows';
import { searchAttributes } from '../../workflows/messages';
import { inMemoryFleetSpec, serverNames } from '../helpers/specs';
import { workflowBundle } from '../helpers/temporal';

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
    }
  });
});
