import { Client, Connection } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';

export interface BatonClient {
  readonly client: Client;
  readonly namespace: string;
  readonly address: string;
  close(): Promise<void>;
}

/** Temporal could not be reached: said in one sentence instead of a gRPC stack trace. */
export class TemporalUnreachableError extends Error {
  override readonly name = 'TemporalUnreachableError';
}

/**
 * Connects as the `temporal` CLI does: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*,
 * or a TEMPORAL_PROFILE from the shared config file.
 */
export async function connectBaton(env: NodeJS.ProcessEnv = process.env): Promise<BatonClient> {
  const config = loadClientConnectConfig({ overrideEnvVars: env as Record<string, string> });
  const address = config.connectionOptions.address ?? 'localhost:7233';
  const namespace = config.namespace ?? 'default';
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...config.connectionOptions, address, connectTimeout: 5_000 });
  } catch (error) {
    throw new TemporalUnreachableError(`cannot reach Temporal at ${address}: ${(error as Error).message}`);
  }
  return {
    client: new Client({ connection, namespace }),
    namespace,
    address,
    close: () => connection.close(),
  };
}
