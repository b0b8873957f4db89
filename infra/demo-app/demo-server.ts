import type { Server as HttpServer } from 'node:http';
import { createServer } from 'node:http';
import { Server } from 'node:net';

/** How one instance of the demo app behaves. */
export interface DemoAppBehaviour {
  readonly name: string;
  readonly version: string;
  readonly latencyMs: number;
  readonly errorRate: number;
  readonly healthStatus: number;
}

export interface DemoServer {
  readonly server: HttpServer;
  /** Requests being answered now, probes included. */
  inFlight(): number;
  /**
   * Stops accepting connections and resolves once every request in flight has its answer. With
   * `closeIdleAfterMs`, idle keep-alive connections are left that long before they are closed; see below.
   */
  shutdown(closeIdleAfterMs: number): Promise<void>;
}

/**
 * The demo application's web server: reports its version, answers with a configurable latency and error rate,
 * and stops gracefully, finishing every request in flight. `?delay=2000` makes one request take that long.
 * `/metrics` gives its request counts in Prometheus' text format, for an analysis, or a check that traffic stopped
 * reaching it, to read. One process runs one (`server.ts`), or many on their ports (the server farm).
 */
export function createDemoServer(app: DemoAppBehaviour): DemoServer {
  const { name, version } = app;
  let inFlight = 0;
  let stopping = false;
  /** Requests answered, by status code; probes and metrics reads left out, so the figures are the traffic's. */
  const answered = new Map<number, number>();
  /** The time those requests took, in seconds, and how many: a summary without quantiles. */
  let answeredSeconds = 0;
  let timedAnswers = 0;

  const metricsText = (): string => {
    const lines = [
      '# HELP demo_requests_total Requests answered, by status code.',
      '# TYPE demo_requests_total counter',
      ...[...answered].map(
        ([code, count]) => `demo_requests_total{code="${code}",version="${version}"} ${count}`,
      ),
      '# HELP demo_request_duration_seconds Time taken to answer a request.',
      '# TYPE demo_request_duration_seconds summary',
      `demo_request_duration_seconds_sum ${answeredSeconds}`,
      `demo_request_duration_seconds_count ${timedAnswers}`,
      '# HELP demo_requests_in_flight Requests being answered now.',
      '# TYPE demo_requests_in_flight gauge',
      // This read is one of them.
      `demo_requests_in_flight ${inFlight - 1}`,
    ];
    return `${lines.join('\n')}\n`;
  };

  const server = createServer((req, res) => {
    inFlight++;
    res.on('close', () => {
      inFlight--;
    });
    // While stopping, tell keep-alive clients to reconnect elsewhere instead of reusing this connection.
    if (stopping) res.setHeader('connection', 'close');
    res.setHeader('x-app-version', version);
    res.setHeader('x-app-server', name);
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(metricsText());
      return;
    }
    if (url.pathname === '/healthz') {
      res.writeHead(app.healthStatus, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ name, version, status: app.healthStatus === 200 ? 'ok' : 'unhealthy' }));
      return;
    }
    const delay = Number(url.searchParams.get('delay') ?? app.latencyMs);
    const started = process.hrtime.bigint();
    setTimeout(() => {
      const failed = app.errorRate > 0 && Math.random() < app.errorRate;
      const code = failed ? 500 : 200;
      answered.set(code, (answered.get(code) ?? 0) + 1);
      answeredSeconds += Number(process.hrtime.bigint() - started) / 1e9;
      timedAnswers++;
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ name, version, ok: !failed }));
    }, delay);
  });
  server.keepAliveTimeout = 15_000;

  return {
    server,
    inFlight: () => inFlight,
    shutdown: (closeIdleAfterMs) =>
      new Promise<void>((resolve) => {
        stopping = true;
        if (!server.listening) return resolve();
        if (closeIdleAfterMs === 0) {
          // close() stops accepting and drops idle keep-alive connections; requests in flight run to their end.
          server.close(() => resolve());
          server.closeIdleConnections();
          return;
        }
        // Behind kube-proxy a client's keep-alive connection outlives the pod's removal from the Service, and
        // closing it while idle races the client sending its next request on it. The listener closes now
        // (net.Server's close: http.Server's also drops idle connections); each connection ends after its next
        // answer, which says `connection: close`, or when its client lets it go; those still idle after the
        // grace are closed.
        Server.prototype.close.call(server, () => resolve());
        setTimeout(() => server.closeIdleConnections(), closeIdleAfterMs).unref();
      }),
  };
}
