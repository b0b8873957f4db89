import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { Server } from 'node:net';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';

/**
 * The demo application: a web server that reports its version, with a configurable latency and error rate, and
 * that on SIGTERM stops accepting connections and finishes every request in flight before it exits, as a
 * well-behaved service does. `?delay=2000` makes one request take that long. `/metrics` gives its request counts
 * in Prometheus' text format, for an analysis, or a check that traffic stopped reaching it, to read.
 */
const { values } = parseArgs({
  options: {
    name: { type: 'string' },
    port: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    version: { type: 'string' },
    'latency-ms': { type: 'string', default: '0' },
    'error-rate': { type: 'string', default: '0' },
    'health-status': { type: 'string', default: '200' },
    'startup-ms': { type: 'string', default: '0' },
    'starts-log': { type: 'string' },
    // A process that dies on its own some time after it starts serving: a crash, for tests of one.
    'exit-after-ms': { type: 'string' },
    // How long after SIGTERM idle keep-alive connections are closed; see shutdown().
    'close-idle-after-ms': { type: 'string', default: '0' },
  },
});
// In a container the hostname is the pod's name.
const name = values.name ?? hostname();
const version = values.version ?? 'v0';
const port = Number(values.port);
const latencyMs = Number(values['latency-ms']);
const errorRate = Number(values['error-rate']);
const healthStatus = Number(values['health-status']);
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write('--port: expected a TCP port\n');
  process.exit(2);
}

let inFlight = 0;
let stopping = false;
/** Requests answered, by status code; probes and metrics reads left out, so the figures are the traffic's. */
const answered = new Map<number, number>();
/** The time those requests took, in seconds, and how many: a summary without quantiles. */
let answeredSeconds = 0;
let timedAnswers = 0;

function metricsText(): string {
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
}

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
    res.writeHead(healthStatus, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ name, version, status: healthStatus === 200 ? 'ok' : 'unhealthy' }));
    return;
  }
  const delay = Number(url.searchParams.get('delay') ?? latencyMs);
  const started = process.hrtime.bigint();
  setTimeout(() => {
    const failed = errorRate > 0 && Math.random() < errorRate;
    const code = failed ? 500 : 200;
    answered.set(code, (answered.get(code) ?? 0) + 1);
    answeredSeconds += Number(process.hrtime.bigint() - started) / 1e9;
    timedAnswers++;
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ name, version, ok: !failed }));
  }, delay);
});
server.keepAliveTimeout = 15_000;

let booted = false;
// A real service boots (loads code, warms caches, connects to databases) before it listens.
const bootTimer = setTimeout(() => {
  booted = true;
  server.listen(port, values.host, announce);
}, Number(values['startup-ms']));

function announce(): void {
  if (values['starts-log']) {
    appendFileSync(
      values['starts-log'],
      `${JSON.stringify({ time: new Date().toISOString(), name, version, pid: process.pid })}\n`,
    );
  }
  process.stdout.write(`${name} ${version} listening on ${values.host}:${port} (pid ${process.pid})\n`);
  if (values['exit-after-ms'] !== undefined)
    setTimeout(() => {
      process.stdout.write(`${name} ${version} crashing, as asked\n`);
      process.exit(3);
    }, Number(values['exit-after-ms']));
}

function shutdown(): void {
  if (!booted) {
    clearTimeout(bootTimer);
    process.exit(0);
  }
  if (stopping) return;
  stopping = true;
  process.stdout.write(`${name} ${version} stopping: ${inFlight} requests in flight\n`);
  const closeIdleAfterMs = Number(values['close-idle-after-ms']);
  if (closeIdleAfterMs === 0) {
    // close() stops accepting and drops idle keep-alive connections; requests in flight run to their end.
    server.close(() => process.exit(0));
    server.closeIdleConnections();
  } else {
    // Behind kube-proxy a client's keep-alive connection outlives the pod's removal from the Service, and closing
    // it while idle races the client sending its next request on it. The listener closes now (net.Server's close:
    // http.Server's also drops idle connections); each connection ends after its next answer, which says
    // `connection: close`, or when its client lets it go; those still idle after the grace are closed.
    Server.prototype.close.call(server, () => process.exit(0));
    setTimeout(() => server.closeIdleConnections(), closeIdleAfterMs).unref();
  }
  setTimeout(() => process.exit(1), 60_000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
