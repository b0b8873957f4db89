import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { RolloutSpecInput } from '../../spec';
import {
  loadRolloutSpecFile,
  parseDurationMs,
  parseRolloutSpec,
  parseRolloutSpecText,
  SpecError,
} from '../../spec';
import { renderSchema, schemaPath } from '../../spec/write-schema';
import { minimalFleetSpecInput } from '../helpers/specs';

const minimal = minimalFleetSpecInput;

/** Asserts the input is rejected with a problem at `path` whose message matches. */
function assertRejected(input: unknown, path: string, message: RegExp): void {
  assert.throws(
    () => parseRolloutSpec(input),
    (error: unknown) => {
      assert.ok(error instanceof SpecError, `expected SpecError, got ${String(error)}`);
      const problem = error.problems.find((p) => p.path === path);
      assert.ok(problem, `no problem at ${path}; got ${JSON.stringify(error.problems)}`);
      assert.match(problem.message, message);
      return true;
    },
  );
}

describe('rollout spec', () => {
  it('applies every default to a minimal fleet spec', () => {
    const spec = parseRolloutSpec(minimal());
    assert.equal(spec.apiVersion, 'baton.dev/v1');
    // The batch size (1) is resolved by the fleet strategy: Kubernetes targets take none.
    assert.deepEqual(spec.strategy, {
      type: 'rolling',
      pauseBetweenBatches: 0,
      pauses: [],
      method: 'in-place',
    });
    assert.deepEqual(spec.drain, { timeout: 60_000, onTimeout: 'fail', pollInterval: 250 });
    assert.equal(spec.verify?.http.path, '/healthz');
    assert.deepEqual(spec.verify?.http.versionFrom, { json: 'version' });
    assert.equal(spec.failureBudget.maxFailPercent, 0);
    assert.ok(spec.target.kind === 'fleet' && spec.target.upgrade?.timeout === 120_000);
  });

  it('reads batch sizes as counts or percents and durations as text', () => {
    const spec = parseRolloutSpec({
      ...minimal(),
      strategy: { type: 'rolling', batchSize: '25%', maxUnavailable: 1, pauseBetweenBatches: '1.5s' },
      drain: { timeout: '2m', onTimeout: 'force' },
    });
    assert.ok(spec.strategy.type === 'rolling');
    assert.deepEqual(spec.strategy.batchSize, { kind: 'percent', value: 25 });
    assert.deepEqual(spec.strategy.maxUnavailable, { kind: 'count', value: 1 });
    assert.equal(spec.strategy.pauseBetweenBatches, 1_500);
    assert.equal(spec.drain.timeout, 120_000);
  });

  it('accepts a Kubernetes target', () => {
    const spec = parseRolloutSpec({
      target: {
        kind: 'kubernetes',
        name: 'shop',
        deployment: 'shop',
        container: 'app',
        image: 'registry.local/shop',
      },
      version: '1.4.0',
    });
    assert.ok(spec.target.kind === 'kubernetes' && spec.target.namespace === 'default');
    assert.equal(spec.target.readyTimeout, 300_000);
    assert.equal(spec.target.minReadySeconds, 0);
  });

  const kubernetesInput = (strategy: Record<string, unknown>): unknown => ({
    target: { kind: 'kubernetes', name: 'shop', deployment: 'shop', container: 'app', image: 'r/shop' },
    version: 'v2',
    strategy: { type: 'rolling', ...strategy },
  });

  it('takes maxSurge and maxUnavailable on Kubernetes, and refuses a batch size there', () => {
    const spec = parseRolloutSpec(kubernetesInput({ maxSurge: '50%', maxUnavailable: 0 }));
    assert.ok(spec.strategy.type === 'rolling');
    assert.deepEqual(spec.strategy.maxSurge, { kind: 'percent', value: 50 });
    assertRejected(kubernetesInput({ batchSize: 2 }), 'strategy.batchSize', /maxSurge and maxUnavailable/);
    assertRejected(kubernetesInput({ maxSurge: 0, maxUnavailable: '0%' }), 'strategy.maxSurge', /never move/);
  });

  it('reads pauses: timed, approval gates with a timeout, never both; none in native mode', () => {
    const spec = parseRolloutSpec({
      ...minimal(),
      strategy: {
        type: 'rolling',
        pauses: [
          { after: 1, duration: '5m' },
          { after: 2, timeout: '1h' },
        ],
      },
      progressDeadline: { timeout: '30m' },
    });
    assert.ok(spec.strategy.type === 'rolling');
    assert.deepEqual(spec.strategy.pauses, [
      { after: 1, duration: 300_000, onTimeout: 'abort' },
      { after: 2, timeout: 3_600_000, onTimeout: 'abort' },
    ]);
    assert.deepEqual(spec.progressDeadline, { timeout: 1_800_000, action: 'abort' });
    assertRejected(
      { ...minimal(), strategy: { type: 'rolling', pauses: [{ after: 1, duration: '1m', timeout: '1h' }] } },
      'strategy.pauses[0].timeout',
      /not both/,
    );
    assertRejected(
      { ...minimal(), strategy: { type: 'rolling', pauses: [{ after: 0 }] } },
      'strategy.pauses[0].after',
      />=1|at least|too small/i,
    );
    const native = kubernetesInput({ pauses: [{ after: 1 }] }) as { target: Record<string, unknown> };
    native.target.mode = 'native';
    assertRejected(native, 'strategy.pauses', /native mode/);
  });

  it('takes a webhook by URL or by the name of a worker environment variable, exactly one of them', () => {
    const spec = parseRolloutSpec({
      ...minimal(),
      notify: { webhook: { urlFromEnv: 'SLACK_WEBHOOK_URL', format: 'slack' } },
    });
    assert.equal(spec.notify?.webhook.events.length, 6);
    assertRejected(
      { ...minimal(), notify: { webhook: {} } },
      'notify.webhook',
      /exactly one of url and urlFromEnv/,
    );
    assertRejected(
      { ...minimal(), notify: { webhook: { urlFromEnv: 'lower-case' } } },
      'notify.webhook.urlFromEnv',
      /environment variable name/,
    );
    assertRejected(
      { ...minimal(), notify: { webhook: { url: 'http://x/', events: ['exploded'] } } },
      'notify.webhook.events[0]',
      /expected one of started, paused/,
    );
  });

  it('takes recreate on both targets and blue-green on Kubernetes, refusing what is not there', () => {
    const recreate = parseRolloutSpec({
      ...minimal(),
      strategy: { type: 'recreate', preStep: { argv: ['/bin/m', '{version}'] } },
    });
    assert.deepEqual(recreate.strategy, {
      type: 'recreate',
      preStep: { argv: ['/bin/m', '{version}'], timeout: 600_000 },
    });
    assertRejected(
      { ...minimal(), strategy: { type: 'recreate', preStep: { argv: ['/bin/m', '{host}'] } } },
      'strategy.preStep.argv[1]',
      /unknown placeholder \{host\}; expected one of \{name\}, \{version\}/,
    );
    assertRejected(
      { ...minimal(), strategy: { type: 'blue-green' } },
      'target.provision',
      /expected provision \(create and destroy commands\): the blue-green strategy creates servers/,
    );
    const blueGreen = parseRolloutSpec(kubernetesInput({}) as RolloutSpecInput);
    assert.equal(blueGreen.strategy.type, 'rolling');
    const native = kubernetesInput({}) as {
      target: Record<string, unknown>;
      strategy: Record<string, unknown>;
    };
    native.target.mode = 'native';
    native.strategy = { type: 'blue-green' };
    assertRejected(native, 'target.mode', /side-by-side for the blue-green strategy/);
    assertRejected(
      { ...minimal(), strategy: { type: 'linear' } },
      'strategy.type',
      /"rolling", "recreate", "blue-green", "canary", "surge"/,
    );
  });

  it('takes a provisioned fleet for the strategies that create servers, and asks for what each needs', () => {
    const provision = {
      create: { argv: ['/bin/mk', '{name}', '{version}'] },
      destroy: { argv: ['/bin/rm-server', '{name}', '{host}'] },
    };
    const bare: Record<string, unknown> = { ...minimal().target };
    delete bare.servers;
    delete bare.upgrade;
    const provisioned = { ...bare, provision };
    const surge = parseRolloutSpec({ ...minimal(), target: provisioned, strategy: { type: 'surge' } });
    assert.deepEqual(surge.strategy, { type: 'surge', batchSize: { kind: 'percent', value: 100 } });
    assert.ok(surge.target.kind === 'fleet' && surge.target.provision?.serverOptions.join() === 'check');
    parseRolloutSpec({ ...minimal(), target: provisioned, strategy: { type: 'blue-green' } });
    parseRolloutSpec({
      ...minimal(),
      target: provisioned,
      strategy: { type: 'rolling', method: 'replace', batchSize: 2 },
    });
    assertRejected(
      { ...minimal(), target: provisioned, strategy: { type: 'canary', steps: [{ setWeight: 10 }] } },
      'target.upgrade',
      /expected an upgrade command: the canary strategy upgrades servers in place/,
    );
    assertRejected(
      { ...minimal(), target: { ...minimal().target, provision }, strategy: { type: 'surge' } },
      'target.servers',
      /expected no servers with provision: Baton reads the fleet from the HAProxy backend/,
    );
    assertRejected(
      { ...minimal(), target: { ...bare, upgrade: minimal().target.upgrade } },
      'target.servers',
      /at least one server/,
    );
    assertRejected(
      { ...minimal(), strategy: { type: 'rolling', method: 'replace' } },
      'target.provision',
      /rolling strategy with method replace creates servers/,
    );
    assertRejected(
      {
        ...minimal(),
        target: { ...provisioned, provision: { ...provision, serverOptions: ['check;', 'x'] } },
        strategy: { type: 'surge' },
      },
      'target.provision.serverOptions[0]',
      /expected an HAProxy server keyword or value/,
    );
    assertRejected(
      {
        ...minimal(),
        target: { ...provisioned, provision: { ...provision, create: { argv: ['/bin/mk', '{host}'] } } },
        strategy: { type: 'surge' },
      },
      'target.provision.create.argv[1]',
      /unknown placeholder \{host\}; expected one of \{name\}, \{version\}/,
    );
    const kubernetes = kubernetesInput({}) as { strategy: Record<string, unknown> };
    kubernetes.strategy = { type: 'rolling', method: 'replace' };
    assertRejected(kubernetes, 'strategy.method', /in-place on a kubernetes target/);
  });

  it('takes canary steps as a one-of list, refusing what could not run', () => {
    const canary = parseRolloutSpec({
      ...minimal(),
      strategy: {
        type: 'canary',
        steps: [{ setWeight: 10 }, { analysis: { window: '20s' } }, { pause: {} }, { setWeight: 50 }],
      },
    });
    assert.deepEqual(canary.strategy, {
      type: 'canary',
      steps: [
        { setWeight: 10 },
        { analysis: { window: 20_000 } },
        { pause: { onTimeout: 'abort' } },
        { setWeight: 50 },
      ],
    });
    const withSteps = (steps: unknown[]) => ({ ...minimal(), strategy: { type: 'canary', steps } });
    assertRejected(withSteps([]), 'strategy.steps', /at least one step/);
    assertRejected(withSteps([{ setWeight: 10, pause: {} }]), 'strategy.steps[0]', /expected a step/);
    assertRejected(withSteps([{ weight: 10 }]), 'strategy.steps[0]', /expected a step \{ setWeight: N \}/);
    assertRejected(withSteps([{ setWeight: 0 }]), 'strategy.steps[0].setWeight', /from 1 to 100/);
    assertRejected(
      withSteps([{ setWeight: 50 }, { setWeight: 20 }]),
      'strategy.steps[1].setWeight',
      /at least 50.*only grows/,
    );
    assertRejected(
      withSteps([{ analysis: {} }, { setWeight: 20 }]),
      'strategy.steps[0].analysis',
      /setWeight step before the first analysis/,
    );
    assertRejected(
      withSteps([{ setWeight: 20 }, { pause: { duration: '1m', timeout: '1h' } }]),
      'strategy.steps[1].pause.timeout',
      /not both/,
    );
    const kubernetes = kubernetesInput({}) as { strategy: Record<string, unknown> };
    kubernetes.strategy = { type: 'canary', steps: [{ setWeight: 20 }, { analysis: { maxErrorRate: 1 } }] };
    assertRejected(
      kubernetes,
      'strategy.steps[1].analysis.maxErrorRate',
      /only window on a kubernetes target without target.metrics/,
    );
  });

  it('judges a kubernetes canary by thresholds once the pods report their request figures', () => {
    const input = kubernetesInput({}) as {
      target: Record<string, unknown>;
      strategy: Record<string, unknown>;
    };
    input.target.metrics = { requests: 'demo_requests_total', duration: 'demo_request_duration_seconds' };
    input.strategy = { type: 'canary', steps: [{ setWeight: 20 }, { analysis: { maxErrorRate: 1 } }] };
    const spec = parseRolloutSpec(input as RolloutSpecInput);
    assert.ok(spec.target.kind === 'kubernetes');
    assert.deepEqual(spec.target.metrics, {
      path: '/metrics',
      requests: 'demo_requests_total',
      codeLabel: 'code',
      duration: 'demo_request_duration_seconds',
    });
    assertRejected(
      { ...input, target: { ...input.target, metrics: { requests: 'demo requests' } } },
      'target.metrics.requests',
      /Prometheus metric name/,
    );
    assertRejected(
      { ...input, strategy: { type: 'rolling' } },
      'target.metrics',
      /expected no metrics without a canary analysis step/,
    );
  });

  it('refuses maxSurge on a fleet, whose rolling strategy upgrades in place', () => {
    assertRejected(
      { ...minimal(), strategy: { type: 'rolling', maxSurge: 1 } },
      'strategy.maxSurge',
      /in place/,
    );
  });

  it('rejects an unknown field, naming it', () =>
    assertRejected({ ...minimal(), colour: 'blue' }, '', /colour/));
  it('rejects an unknown nested field', () => {
    assertRejected({ ...minimal(), drain: { timeout: '1s', timout: '2s' } }, 'drain', /timout/);
  });
  it('rejects a wrong type, saying what was expected', () => {
    assertRejected(
      { ...minimal(), failureBudget: { maxFailPercent: 'ten' } },
      'failureBudget.maxFailPercent',
      /expected number/,
    );
  });
  it('rejects a duration without a unit', () => {
    assertRejected({ ...minimal(), drain: { timeout: '30' } }, 'drain.timeout', /duration such as/);
  });
  it('rejects a percentage over 100', () => {
    assertRejected(
      { ...minimal(), strategy: { type: 'rolling', batchSize: '150%' } },
      'strategy.batchSize',
      /0% to 100%/,
    );
  });
  it('rejects an unknown strategy, listing the known ones', () => {
    assertRejected({ ...minimal(), strategy: { type: 'yolo' } }, 'strategy.type', /rolling/);
  });
  it('rejects an unknown target kind', () => {
    assertRejected({ ...minimal(), target: { kind: 'vm' } }, 'target.kind', /fleet.*kubernetes/);
  });
  it('rejects duplicate server names, pointing at the second', () => {
    const input = minimal();
    const target = input.target as Extract<RolloutSpecInput['target'], { kind: 'fleet' }>;
    target.servers?.push({ name: 'web-1', address: '127.0.0.1:8083' });
    assertRejected(input, 'target.servers[2].name', /duplicate server name "web-1" \(also at servers\[0\]\)/);
  });
  it('rejects a version that carries shell syntax', () => {
    assertRejected({ ...minimal(), version: 'v2;touch /tmp/pwned' }, 'version', /expected a version/);
    assertRejected({ ...minimal(), version: '$(id)' }, 'version', /expected a version/);
  });
  it('rejects a server name that carries shell syntax', () => {
    const input = minimal();
    (input.target as { servers: Array<{ name: string }> }).servers[0].name = 'web-1;touch /tmp/pwned';
    assertRejected(input, 'target.servers[0].name', /letters, digits/);
  });
  it('rejects an unknown placeholder in the upgrade argv', () => {
    const input = minimal();
    (input.target as { upgrade: { argv: string[] } }).upgrade.argv = ['deploy', '{hostname}'];
    assertRejected(input, 'target.upgrade.argv[1]', /unknown placeholder \{hostname\}/);
  });
  it('rejects maxUnavailable 0 for a fleet', () => {
    assertRejected(
      { ...minimal(), strategy: { type: 'rolling', maxUnavailable: 0 } },
      'strategy.maxUnavailable',
      /at least 1/,
    );
  });
  it('reports every problem at once', () => {
    assert.throws(
      () => parseRolloutSpec({ ...minimal(), version: '', drain: { timeout: 'soon' } }),
      (error: SpecError) => error.problems.length === 2,
    );
  });
});

describe('loading spec files', () => {
  it('loads YAML with the same meaning as JSON', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'baton-spec-'));
    try {
      const yamlPath = join(dir, 'rollout.yaml');
      await writeFile(
        yamlPath,
        [
          'target:',
          '  kind: fleet',
          '  name: web',
          '  loadBalancer: { haproxy: { socket: /run/haproxy/admin.sock, backend: web } }',
          '  servers:',
          '    - { name: web-1, address: "127.0.0.1:8081" }',
          '    - { name: web-2, address: "127.0.0.1:8082" }',
          '  upgrade: { argv: [/usr/local/bin/deploy, "{name}", "{version}"] }',
          'version: v2',
        ].join('\n'),
      );
      assert.deepEqual(await loadRolloutSpecFile(yamlPath), parseRolloutSpec(minimal()));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  it('names the file and the problem for a missing file', async () => {
    await assert.rejects(
      loadRolloutSpecFile('/nonexistent/rollout.yaml'),
      /\/nonexistent\/rollout.yaml.*readable file/s,
    );
  });
  it('rejects YAML that does not parse', () => {
    assert.throws(
      () => parseRolloutSpecText('target: [unclosed', 'x.yaml'),
      /x.yaml is not a valid rollout spec.*expected YAML or JSON/s,
    );
  });
  it('rejects an alias to no anchor as bad input, not a crash (found by fast-check)', () => {
    assert.throws(
      () => parseRolloutSpecText('*-', 'x.yaml'),
      /x.yaml is not a valid rollout spec.*unidentified alias/s,
    );
  });
  it('rejects an alias bomb ("billion laughs") before expanding it', () => {
    const bomb = [
      'a: &a [x, x, x, x, x, x, x, x, x, x]',
      ...'bcdefghij'
        .split('')
        .map((k, i) => `${k}: &${k} [${Array(10).fill(`*${'abcdefghij'[i]}`).join(', ')}]`),
    ].join('\n');
    assert.throws(
      () => parseRolloutSpecText(bomb, 'bomb.yaml'),
      /bomb.yaml is not a valid rollout spec.*expected YAML or JSON/s,
    );
  });
  it('rejects duplicate keys', () => {
    assert.throws(() => parseRolloutSpecText('version: v1\nversion: v2\n'), /expected YAML or JSON/);
  });
  it('rejects an oversized text before parsing it', () => {
    assert.throws(() => parseRolloutSpecText(`# ${'x'.repeat(5 * 1024 * 1024)}`), /at most 4194304 bytes/);
  });
});

describe('durations', () => {
  it('parses each unit', () => {
    assert.deepEqual(['500ms', '30s', '2m', '1.5h', '30', 's'].map(parseDurationMs), [
      500,
      30_000,
      120_000,
      5_400_000,
      undefined,
      undefined,
    ]);
  });
});

describe('JSON Schema', () => {
  it('is generated from the zod schema and committed up to date (npm run schema)', () => {
    assert.equal(readFileSync(schemaPath, 'utf8'), renderSchema());
  });
  it('describes the input side: durations are strings, the target a union', () => {
    const schema = JSON.parse(readFileSync(schemaPath, 'utf8')) as {
      properties: Record<string, { anyOf?: unknown[]; oneOf?: unknown[] }>;
    };
    assert.ok(schema.properties.target?.oneOf ?? schema.properties.target?.anyOf);
  });
});

describe('fleet size and strategy', () => {
  const fleetOf = (n: number) =>
    Array.from({ length: n }, (_, i) => ({
      name: `web-${i + 1}`,
      address: `10.1.${i >> 8}.${i & 255}:8080`,
    }));

  it('takes 5,000 servers for a rolling rollout, which goes on in new runs', () => {
    const input = minimal();
    const spec = parseRolloutSpec({ ...input, target: { ...input.target, servers: fleetOf(5_000) } });
    assert.equal(spec.target.kind === 'fleet' && spec.target.servers.length, 5_000);
  });

  it('refuses more than 1,000 servers for a strategy whose history must fit one run, naming the field', () => {
    const input = minimal();
    assertRejected(
      {
        ...input,
        target: { ...input.target, servers: fleetOf(1_001) },
        strategy: { type: 'canary', steps: [{ setWeight: 10 }] },
      },
      'target.servers',
      /at most 1000 servers for the canary strategy .* got 1001; a rolling in-place rollout takes any number/,
    );
  });
});
