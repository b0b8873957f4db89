import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

/**
 * The demo application: a web server that reports its version, with a configurable latency and error rate, and
 * that on SIGTERM stops accepting connections and finishes every request in flight before it exits, as a
 * well-behaved service does. `?delay=2000` makes one request take that long.
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
  },
});
const name = values.name ?? 'demo';
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
  if (url.pathname === '/healthz') {
    res.writeHead(healthStatus, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ name, version, status: healthStatus === 200 ? 'ok' : 'unhealthy' }));
    return;
  }
  const delay = Number(url.searchParams.get('delay') ?? latencyMs);
  setTimeout(() => {
    const failed = errorRate > 0 && Math.random() < errorRate;
    res.writeHead(failed ? 500 : 200, { 'content-type': 'application/json' });
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
}

function shutdown(): void {
  if (!booted) {
    clearTimeout(bootTimer);
    process.exit(0);
  }
  if (stopping) return;
  stopping = true;
  process.stdout.write(`${name} ${version} stopping: ${inFlight} requests in flight\n`);
  // close() stops accepting and drops idle keep-alive connections; requests in flight run to their end.
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(1), 60_000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
