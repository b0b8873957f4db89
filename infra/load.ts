import { Agent, request } from 'node:http';

export interface LoadStats {
  readonly sent: number;
  readonly ok: number;
  readonly failed: number;
  /** Failures by kind: "HTTP 502", "ECONNRESET", ... */
  readonly errors: Readonly<Record<string, number>>;
  /** Successful answers by the version that served them. */
  readonly byVersion: Readonly<Record<string, number>>;
  readonly durationS: number;
}

export interface LoadGenerator {
  stats(): LoadStats;
  /** Stops sending, waits for the requests in flight, and returns the final counts. */
  stop(): Promise<LoadStats>;
}

/**
 * Sends a steady stream of requests (open loop: the rate holds whatever the latency) through keep-alive
 * connections, as real users behind a load balancer would, and counts every failed one.
 */
export function startLoad(options: {
  url: string;
  ratePerSecond: number;
  timeoutMs?: number;
  /**
   * false: a new connection for every request, so a Service spreads requests over its pods as they are now (kube-proxy
   * picks a pod per connection); a keep-alive connection stays with the pod it first reached.
   */
  keepAlive?: boolean;
}): LoadGenerator {
  // Idle connections close after 4 s, before HAProxy's `timeout http-keep-alive` (10 s) does: a client that keeps
  // them longer than the server races it, sending a request on a connection the server is closing (ECONNRESET).
  const agent = new Agent({ keepAlive: options.keepAlive ?? true, maxSockets: 512, timeout: 4_000 });
  const target = new URL(options.url);
  const started = Date.now();
  let sent = 0;
  let ok = 0;
  let failed = 0;
  let inFlight = 0;
  let stopped = false;
  const errors: Record<string, number> = {};
  const byVersion: Record<string, number> = {};
  const fail = (kind: string) => {
    failed++;
    errors[kind] = (errors[kind] ?? 0) + 1;
  };
  let idleResolve: (() => void) | undefined;
  const done = () => {
    inFlight--;
    if (stopped && inFlight === 0) idleResolve?.();
  };

  const sendOne = () => {
    sent++;
    inFlight++;
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      fn();
      done();
    };
    const req = request(
      {
        agent,
        host: target.hostname,
        port: target.port,
        path: `${target.pathname}${target.search}`,
        timeout: options.timeoutMs ?? 10_000,
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          settle(() => {
            if (res.statusCode && res.statusCode >= 200 && res.statusCode < 300) {
              ok++;
              const version = String(res.headers['x-app-version'] ?? 'unknown');
              byVersion[version] = (byVersion[version] ?? 0) + 1;
            } else {
              fail(`HTTP ${res.statusCode}`);
            }
          }),
        );
        res.on('error', (error: NodeJS.ErrnoException) => settle(() => fail(error.code ?? error.message)));
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (error: NodeJS.ErrnoException) =>
      settle(() => fail(`${error.code ?? error.message}${req.reusedSocket ? ' (reused connection)' : ''}`)),
    );
    req.end();
  };

  // Tick every 10 ms and send what the rate owes since the start, so timer jitter doesn't lower the rate.
  const timer = setInterval(() => {
    const owed = Math.floor(((Date.now() - started) / 1000) * options.ratePerSecond) - sent;
    for (let i = 0; i < owed; i++) sendOne();
  }, 10);

  const snapshot = (): LoadStats => ({
    sent,
    ok,
    failed,
    errors: { ...errors },
    byVersion: { ...byVersion },
    durationS: (Date.now() - started) / 1000,
  });

  return {
    stats: snapshot,
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      const final = snapshot();
      if (inFlight > 0) await new Promise<void>((resolve) => (idleResolve = resolve));
      agent.destroy();
      return { ...snapshot(), durationS: final.durationS };
    },
  };
}
