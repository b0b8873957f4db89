import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadWorkerConfig } from '../../worker/config';

describe('worker configuration from the environment', () => {
  it('reads the connection the way the temporal CLI does', () => {
    const config = loadWorkerConfig({
      TEMPORAL_ADDRESS: 'temporal.internal:7233',
      TEMPORAL_NAMESPACE: 'deploys',
    });
    assert.equal(config.connection.address, 'temporal.internal:7233');
    assert.equal(config.namespace, 'deploys');
    assert.equal(config.taskQueue, 'baton');
    assert.equal(config.metricsAddress, undefined);
  });

  it('turns on TLS and the API key when they are set', () => {
    const config = loadWorkerConfig({
      TEMPORAL_ADDRESS: 'ns.tmprl.cloud:7233',
      TEMPORAL_API_KEY: 'secret-key',
    });
    assert.equal(config.connection.apiKey, 'secret-key');
    assert.ok(config.connection.tls, 'an API key implies TLS');
  });

  it('defaults to localhost:7233 and the default namespace', () => {
    const config = loadWorkerConfig({});
    assert.equal(config.connection.address, 'localhost:7233');
    assert.equal(config.namespace, 'default');
  });

  it('caps the task queue activities per second only when asked, refusing a non-number', () => {
    assert.equal(loadWorkerConfig({}).maxActivitiesPerSecond, undefined);
    assert.equal(loadWorkerConfig({ BATON_MAX_ACTIVITIES_PER_SECOND: '40' }).maxActivitiesPerSecond, 40);
    assert.throws(
      () => loadWorkerConfig({ BATON_MAX_ACTIVITIES_PER_SECOND: 'fast' }),
      /BATON_MAX_ACTIVITIES_PER_SECOND: /,
    );
  });

  it('rejects a bad metrics address, naming the variable', () => {
    assert.throws(
      () => loadWorkerConfig({ BATON_METRICS_ADDRESS: 'nine-four-six-four' }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /BATON_METRICS_ADDRESS: expected host:port/);
        return true;
      },
    );
  });

  it('rejects an unknown log level, listing the known ones', () => {
    assert.throws(
      () => loadWorkerConfig({ BATON_LOG_LEVEL: 'loud' }),
      /BATON_LOG_LEVEL: expected one of TRACE, DEBUG, INFO, WARN, ERROR/,
    );
  });
});
