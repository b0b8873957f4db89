import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../../infra/ports';
import type { TestTemporal } from '../helpers/temporal';
import { connectTestTemporal, uniqueTaskQueue } from '../helpers/temporal';
import { delay } from '../../infra/processes';

let temporal: TestTemporal;
before(async () => {
  temporal = await connectTestTemporal();
});
after(async () => temporal.close());

const root = join(__dirname, '..', '..');

describe('the worker process (npm run worker)', () => {
  it('logs JSON, serves Prometheus metrics, and shuts down cleanly on SIGTERM', async () => {
    const metricsPort = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'worker/main.ts'], {
      cwd: root,
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: temporal.address,
        TEMPORAL_NAMESPACE: temporal.namespace,
        BATON_TASK_QUEUE: uniqueTaskQueue('worker-process'),
        BATON_METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

    const deadline = Date.now() + 60_000;
    while (!stdout.includes('Baton worker started')) {
      assert.ok(Date.now() < deadline, `worker did not start: ${stdout}${stderr}`);
      assert.equal(child.exitCode, null, `worker exited: ${stderr}`);
      await delay(100);
    }
    const started = stdout.split('\n').find((line) => line.includes('Baton worker started')) ?? '';
    const entry = JSON.parse(started) as Record<string, unknown>;
    assert.equal(entry.level, 'INFO');
    assert.equal(entry.namespace, temporal.namespace);

    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.match(metrics, /temporal_/);

    child.kill('SIGTERM');
    assert.equal(await exited, 0, `exit code after SIGTERM; stderr: ${stderr}`);
  });

  it('exits with code 2 and names the variable on bad configuration', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'worker/main.ts'], {
      cwd: root,
      env: { ...process.env, BATON_LOG_LEVEL: 'loud' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 2);
    assert.match(stderr, /BATON_LOG_LEVEL/);
  });
});
