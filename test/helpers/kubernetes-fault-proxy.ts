import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { RequestOptions } from 'node:https';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

/** One request to the API server as the proxy sees it. */
export interface ApiRequest {
  readonly method: string;
  /** The path without the query: `/apis/apps/v1/namespaces/ns/deployments/web-v2`. */
  readonly path: string;
  readonly watch: boolean;
}

/**
 * What a rule does to a request it picks: answer with an API Status error itself (409 Conflict, 500 Internal
 * Error, ...) without the API server seeing the request, or pass it on and cut the connection after a while
 * (a watch dropped by a load balancer or a restarting API server).
 */
export type Fault = { readonly status: 409 | 429 | 500 | 503 } | { readonly dropAfterMs: number };

export interface FaultRule {
  readonly name: string;
  readonly when: (request: ApiRequest) => boolean;
  /** Picks the first matching request, then every `every`-th after it. */
  readonly every: number;
  /** Stops after this many faults, so a rollout is disturbed, not prevented. */
  readonly limit?: number;
  readonly fault: Fault;
}

export interface FaultProxy {
  /** A kubeconfig that reaches the API server through the proxy, with the upstream user's credentials. */
  readonly kc: KubeConfig;
  /** Faults injected so far, by rule name. */
  readonly injected: Readonly<Record<string, number>>;
  /** Every request seen, as "METHOD path[?watch]", with the fault it got if any. */
  readonly log: readonly string[];
  close(): Promise<void>;
}

const reasons: Record<number, string> = {
  409: 'Conflict',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
};

/** The Status body the API server sends with an error, so clients parse the injected one as a real one. */
function statusBody(code: number, request: ApiRequest): string {
  const message =
    code === 409
      ? `Operation cannot be fulfilled on ${request.path}: the object has been modified; please apply your changes to the latest version and try again (injected)`
      : `${reasons[code]} for ${request.method} ${request.path} (injected)`;
  return JSON.stringify({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason: reasons[code],
    code,
  });
}

/**
 * A plain-HTTP proxy on loopback in front of a real kube-apiserver that injects the faults a real API server and
 * the network between produce: conflicts, server errors, throttling, dropped watches. Requests it does not pick
 * reach the API server unchanged, authenticated with the credentials of the kubeconfig it was given.
 */
export async function startFaultProxy(
  upstream: KubeConfig,
  rules: readonly FaultRule[],
): Promise<FaultProxy> {
  const cluster = upstream.getCurrentCluster();
  if (!cluster) throw new Error('the upstream kubeconfig names no cluster');
  const target = new URL(cluster.server);
  const tls: RequestOptions = {};
  await upstream.applyToHTTPSOptions(tls);
  const matches = new Map<string, number>();
  const injected: Record<string, number> = {};
  const log: string[] = [];
  const open = new Set<ServerResponse>();

  const pick = (request: ApiRequest): FaultRule | undefined =>
    rules.find((rule) => {
      if (!rule.when(request)) return false;
      const n = matches.get(rule.name) ?? 0;
      matches.set(rule.name, n + 1);
      if (n % rule.every !== 0 || (injected[rule.name] ?? 0) >= (rule.limit ?? Number.POSITIVE_INFINITY))
        return false;
      injected[rule.name] = (injected[rule.name] ?? 0) + 1;
      return true;
    });

  const forward = (req: IncomingMessage, res: ServerResponse, dropAfterMs?: number) => {
    const headers = { ...req.headers, ...(tls.headers ?? {}), host: target.host };
    const upstreamRequest = httpsRequest(
      {
        ...tls,
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers,
      },
      (upstreamResponse) => {
        res.writeHead(upstreamResponse.statusCode ?? 502, upstreamResponse.headers);
        upstreamResponse.pipe(res);
      },
    );
    upstreamRequest.on('error', () => res.destroy());
    req.pipe(upstreamRequest);
    if (dropAfterMs !== undefined) {
      const timer = setTimeout(() => {
        upstreamRequest.destroy();
        res.destroy();
      }, dropAfterMs);
      res.on('close', () => clearTimeout(timer));
    }
  };

  const server = createServer((req, res) => {
    open.add(res);
    res.on('close', () => open.delete(res));
    const url = new URL(req.url ?? '/', 'http://proxy');
    const request: ApiRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      watch: url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1',
    };
    const rule = pick(request);
    log.push(
      `${request.method} ${request.path}${request.watch ? '?watch' : ''}${rule ? ` → ${rule.name}` : ''}`,
    );
    if (rule && 'status' in rule.fault) {
      req.resume();
      res.writeHead(rule.fault.status, { 'content-type': 'application/json' });
      res.end(statusBody(rule.fault.status, request));
      return;
    }
    forward(req, res, rule && 'dropAfterMs' in rule.fault ? rule.fault.dropAfterMs : undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const kc = new KubeConfig();
  kc.loadFromOptions({
    // Plain HTTP on loopback to the proxy (the proxy speaks TLS to the API server); client-node accepts an
    // http:// server only when told not to verify TLS, of which there is none on this leg.
    clusters: [{ name: 'fault-proxy', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'fault-proxy' }],
    contexts: [{ name: 'fault-proxy', cluster: 'fault-proxy', user: 'fault-proxy' }],
    currentContext: 'fault-proxy',
  });
  return {
    kc,
    injected,
    log,
    close: async () => {
      for (const res of open) res.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
