import { readFile } from 'node:fs/promises';
import { Client, Connection } from '@temporalio/client';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { bundleWorkflowCode, NativeConnection } from '@temporalio/worker';
import type { ScratchTemporal } from '../../infra/scratch-temporal';
import { startScratchTemporal } from '../../infra/scratch-temporal';
import { prebuiltBundleVariable, workflowsPath } from '../../worker/create-worker';

export interface TestTemporal {
  readonly address: string;
  readonly namespace: string;
  /** The Temporal UI the dev server serves. */
  readonly uiUrl: string;
  readonly client: Client;
  readonly nativeConnection: NativeConnection;
  close(): Promise<void>;
}

/**
 * Connects to the real Temporal dev server the test runner started (BATON_TEST_TEMPORAL_ADDRESS), or starts a
 * private one when a test file runs alone. Either way the server was built from the Go module proxy.
 */
export async function connectTestTemporal(): Promise<TestTemporal> {
  let scratch: ScratchTemporal | undefined;
  let address = process.env.BATON_TEST_TEMPORAL_ADDRESS;
  let namespace = process.env.BATON_TEST_TEMPORAL_NAMESPACE ?? 'baton-test';
  let uiUrl = process.env.BATON_TEST_TEMPORAL_UI ?? '';
  if (!address) {
    scratch = await startScratchTemporal('temporal', namespace);
    ({ address, namespace, uiUrl } = scratch.temporal);
  }
  const connection = await Connection.connect({ address });
  const nativeConnection = await NativeConnection.connect({ address });
  return {
    address,
    namespace,
    uiUrl,
    client: new Client({ connection, namespace }),
    nativeConnection,
    close: async () => {
      await connection.close();
      await nativeConnection.close();
      await scratch?.close();
    },
  };
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;

/**
 * The workflow bundle: the one the test runner built for the whole run (webpack takes seconds of both cores), or
 * built once in this process when a test file runs alone.
 */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  const prebuilt = process.env[prebuiltBundleVariable];
  bundle ??= prebuilt
    ? Promise.all([readFile(prebuilt, 'utf8'), readFile(`${prebuilt}.map`, 'utf8')]).then(
        ([code, sourceMap]) => ({
          code,
          sourceMap,
        }),
      )
    : bundleWorkflowCode({ workflowsPath, logger: quietBundlerLogger });
  return bundle;
}

/** Keeps webpack's chatter out of test output; warnings and errors still show. */
export const quietBundlerLogger = {
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (message: string) => process.stderr.write(`bundler: ${message}\n`),
  error: (message: string) => process.stderr.write(`bundler: ${message}\n`),
  log: () => undefined,
};

let uniq = 0;
/** A task queue no other test shares, so workers of concurrent test files never steal each other's tasks. */
export function uniqueTaskQueue(prefix: string): string {
  uniq++;
  return `${prefix}-${process.pid}-${uniq}-${Date.now().toString(36)}`;
}
