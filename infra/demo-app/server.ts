import { appendFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { createDemoServer } from './demo-server';

/**
 * The demo application as a process of its own (a fleet's host, a pod's container): on SIGTERM it stops accepting
 * connections and finishes every request in flight before it exits, as a well-behaved service does.
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

const app = createDemoServer({ name, version, latencyMs, errorRate, healthStatus });
const { server } = app;

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

let stopping = false;
function shutdown(): void {
  if (!booted) {
    clearTimeout(bootTimer);
    process.exit(0);
  }
  if (stopping) return;
  stopping = true;
  process.stdout.write(`${name} ${version} stopping: ${app.inFlight()} requests in flight\n`);
  void app.shutdown(Number(values['close-idle-after-ms'])).then(() => process.exit(0));
  setTimeout(() => process.exit(1), 60_000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
