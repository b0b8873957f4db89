import { Agent } from 'node:https';
import { ApplicationFailure } from '@temporalio/activity';
import type { RequestContext, SecurityAuthentication } from '@kubernetes/client-node';
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  createConfiguration,
  DiscoveryV1Api,
  KubeConfig,
  PatchStrategy,
  ServerConfiguration,
  setHeaderOptions,
} from '@kubernetes/client-node';

/** The API clients the Kubernetes activities use, made from one kubeconfig. */
export interface KubernetesClients {
  readonly config: KubeConfig;
  readonly apps: AppsV1Api;
  readonly core: CoreV1Api;
  readonly discovery: DiscoveryV1Api;
}

const clientsByConfig = new WeakMap<KubeConfig, KubernetesClients>();

/** The clients for a kubeconfig, made once: they share its pool of connections. */
export function kubernetesClients(config: KubeConfig): KubernetesClients {
  let clients = clientsByConfig.get(config);
  if (!clients) {
    const cluster = config.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig names no current cluster');
    const configuration = createConfiguration({
      baseServer: new ServerConfiguration(cluster.server, {}),
      authMethods: { default: new PooledConnections(config) },
    });
    clients = {
      config,
      apps: new AppsV1Api(configuration),
      core: new CoreV1Api(configuration),
      discovery: new DiscoveryV1Api(configuration),
    };
    clientsByConfig.set(config, clients);
  }
  return clients;
}

/**
 * client-node gives every request an https.Agent of its own, so every call opens a TCP connection and a TLS session:
 * 17 ms a call against 4 ms on a kept-alive one, measured on the local control plane, and a rollout step makes
 * tens of calls. Requests keep everything the kubeconfig sets (headers, tokens, certificates, proxies) and, over
 * plain HTTPS, share one keep-alive agent per set of TLS options; a rotated certificate gets a new one.
 */
class PooledConnections implements SecurityAuthentication {
  private pool: { key: string; agent: Agent } | undefined;

  constructor(private readonly config: KubeConfig) {}

  getName(): string {
    return 'default';
  }

  async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await this.config.applySecurityAuthentication(context);
    const made = context.getAgent();
    // Proxy agents and plain HTTP are left as the library made them.
    if (!(made instanceof Agent) || made.constructor !== Agent) return;
    const { ca, cert, key, pfx, passphrase, rejectUnauthorized, servername } = made.options;
    const poolKey = JSON.stringify([ca, cert, key, pfx, passphrase, rejectUnauthorized, servername]);
    if (this.pool?.key !== poolKey) {
      const stale = this.pool?.agent;
      // Calls still on the old agent finish first.
      if (stale) setTimeout(() => stale.destroy(), 60_000).unref();
      this.pool = { key: poolKey, agent: new Agent({ ...made.options, keepAlive: true }) };
    }
    context.setAgent(this.pool.agent);
  }
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
