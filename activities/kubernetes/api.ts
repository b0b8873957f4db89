import { ApplicationFailure } from '@temporalio/activity';
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  DiscoveryV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';

/** The API clients the Kubernetes activities use, made from one kubeconfig. */
export interface KubernetesClients {
  readonly config: KubeConfig;
  readonly apps: AppsV1Api;
  readonly core: CoreV1Api;
  readonly discovery: DiscoveryV1Api;
}

export function kubernetesClients(config: KubeConfig): KubernetesClients {
  return {
    config,
    apps: config.makeApiClient(AppsV1Api),
    core: config.makeApiClient(CoreV1Api),
    discovery: config.makeApiClient(DiscoveryV1Api),
  };
}

let defaultClients: KubernetesClients | undefined;

/**
 * Clients for the cluster kubectl would talk to: $KUBECONFIG, else ~/.kube/config, else the in-cluster service
 * account (a worker running in a pod). Loaded once, on first use.
 */
export function defaultKubernetesClients(): KubernetesClients {
  if (!defaultClients) {
    const config = new KubeConfig();
    config.loadFromDefault();
    if (!config.getCurrentCluster())
      throw ApplicationFailure.nonRetryable(
        'no Kubernetes cluster configured: set KUBECONFIG, write ~/.kube/config, or run the worker in a pod',
        'KubernetesNotConfigured',
      );
    defaultClients = kubernetesClients(config);
  }
  return defaultClients;
}

/** Request options that send a patch as a JSON merge patch (client-node's default is a JSON patch). */
export const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export const kubernetesFailureTypes = {
  rejected: 'KubernetesRejected',
  notAvailable: 'NotAvailable',
  preflight: 'PreflightFailed',
} as const;

export function apiStatus(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}

/** The API server's own words for a failed call: the `message` of its Status body. */
function apiMessage(error: ApiException<unknown>): string {
  const body: unknown = typeof error.body === 'string' ? safeParse(error.body) : error.body;
  if (body && typeof body === 'object' && 'message' in body && typeof body.message === 'string')
    return body.message;
  return `HTTP ${error.code}`;
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/**
 * Runs one API call and words its failure for an operator. Requests the API server refuses for good (bad
 * request, forbidden, not found, invalid) fail the activity without retries; conflicts, throttling, server
 * errors and dropped connections are left to the activity's retry policy, which backs off.
 */
export async function kubernetesCall<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (!(error instanceof ApiException)) throw error;
    const code = error.code;
    const message = `${what}: ${apiMessage(error)} (HTTP ${code})`;
    if (code >= 400 && code < 500 && code !== 408 && code !== 409 && code !== 429)
      throw ApplicationFailure.nonRetryable(message, kubernetesFailureTypes.rejected);
    throw ApplicationFailure.retryable(message, 'KubernetesUnavailable');
  }
}

/**
 * Read-modify-write with optimistic concurrency: when someone else changed the object between our read and our
 * write (409 Conflict), read it again and redo the change, with a short backoff.
 */
export async function retryOnConflict<T>(attempt: () => Promise<T>, tries = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (error) {
      if (apiStatus(error) !== 409 || i >= tries) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** i));
    }
  }
}
