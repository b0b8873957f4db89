import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RolloutSpecInput } from '../../spec';
import { parseRolloutSpec, SpecError } from '../../spec';
import { rolloutJsonSchema } from '../../spec/json-schema';
import { strategyTypes } from '../../spec/rollout';

/**
 * Every field of the spec, on every target and strategy: either Baton acts on it, or the spec is refused naming it.
 * The fields come from the JSON Schema, so a field added to the schema and not to `samples` fails the walk.
 */

type JsonSchema = {
  properties?: Record<string, JsonSchema>;
  required?: string[];
  anyOf?: JsonSchema[];
  const?: unknown;
  type?: string;
};

/** A leaf field: its path, and the target kind or strategy type whose variant of the schema holds it. */
interface Field {
  readonly path: readonly string[];
  /** Fields beside it that its object requires, which must be set with it. */
  readonly siblings: readonly string[];
  readonly target?: string;
  readonly strategy?: string;
}

const fieldName = (field: Field) =>
  field.path
    .map((key, i) =>
      i === 0 && field.target
        ? `target(${field.target})`
        : i === 0 && field.strategy
          ? `strategy(${field.strategy})`
          : key,
    )
    .join('.');

/** The leaves of the schema: objects are walked, arrays and unions of plain values are leaves. */
function leavesOf(
  schema: JsonSchema,
  path: string[] = [],
  variant: Omit<Field, 'path' | 'siblings'> = {},
  siblings: readonly string[] = [],
): Field[] {
  if (schema.properties) {
    const required = schema.required ?? [];
    return Object.entries(schema.properties).flatMap(([key, child]) =>
      leavesOf(
        child,
        [...path, key],
        variant,
        required.filter((r) => r !== key),
      ),
    );
  }
  const variants = schema.anyOf?.filter((option) => option.properties) ?? [];
  if (variants.length > 0 && path.length === 1 && (path[0] === 'target' || path[0] === 'strategy')) {
    return variants.flatMap((option) => {
      const discriminator = path[0] === 'target' ? 'kind' : 'type';
      const which = String(option.properties?.[discriminator]?.const);
      return leavesOf({ properties: option.properties ?? {} }, path, {
        ...variant,
        [path[0]]: which,
      });
    });
  }
  return [{ path, siblings, ...variant }];
}

/** A value that asks for something (never the default) for each leaf, by its name. */
const samples: Record<string, unknown> = {
  apiVersion: 'baton.dev/v1',
  kind: 'Rollout',
  version: 'v7',
  'target(fleet).kind': 'fleet',
  'target(fleet).name': 'other-name',
  'target(fleet).loadBalancer.haproxy.socket': '/run/other.sock',
  'target(fleet).loadBalancer.haproxy.backend': 'other',
  'target(fleet).servers': [
    { name: 'api-1', address: '127.0.0.1:9001', healthUrl: 'http://127.0.0.1:9001/up' },
  ],
  'target(fleet).upgrade.argv': ['/usr/bin/other', '{name}'],
  'target(fleet).upgrade.timeout': '7m',
  'target(fleet).provision.create.argv': ['/usr/bin/make-server', '{name}', '{version}'],
  'target(fleet).provision.create.timeout': '7m',
  'target(fleet).provision.destroy.argv': ['/usr/bin/unmake-server', '{name}'],
  'target(fleet).provision.destroy.timeout': '7m',
  'target(fleet).provision.serverOptions': ['check', 'inter', 1],
  'target(kubernetes).kind': 'kubernetes',
  'target(kubernetes).name': 'other-name',
  'target(kubernetes).namespace': 'shop',
  'target(kubernetes).deployment': 'api',
  'target(kubernetes).container': 'main',
  'target(kubernetes).image': 'registry.local/other',
  'target(kubernetes).mode': 'native',
  'target(kubernetes).service': 'api',
  'target(kubernetes).readyTimeout': '7m',
  'target(kubernetes).minReadySeconds': 7,
  'target(kubernetes).detachDelay': '7s',
  'target(kubernetes).metrics.port': 9090,
  'target(kubernetes).metrics.path': '/stats',
  'target(kubernetes).metrics.requests': 'http_requests_total',
  'target(kubernetes).metrics.codeLabel': 'status',
  'target(kubernetes).metrics.duration': 'http_request_duration_seconds',
  'strategy(rolling).type': 'rolling',
  'strategy(rolling).batchSize': 2,
  'strategy(rolling).maxUnavailable': 2,
  'strategy(rolling).maxSurge': 2,
  'strategy(rolling).pauseBetweenBatches': '7s',
  'strategy(rolling).method': 'replace',
  'strategy(rolling).pauses': [{ after: 1, duration: '7s' }],
  'strategy(recreate).type': 'recreate',
  'strategy(recreate).preStep.argv': ['/usr/bin/migrate', '{version}'],
  'strategy(recreate).preStep.timeout': '7m',
  'strategy(blue-green).type': 'blue-green',
  'strategy(blue-green).autoPromote': false,
  'strategy(blue-green).scaleDownDelay': '7s',
  'strategy(blue-green).previewService': 'web-preview',
  'strategy(canary).type': 'canary',
  'strategy(canary).steps': [
    { setWeight: 30 },
    { analysis: { window: '7s' } },
    { pause: { duration: '7s' } },
  ],
  'strategy(canary).batchSize': 2,
  'strategy(surge).type': 'surge',
  'strategy(surge).batchSize': '50%',
  'drain.timeout': '7m',
  'drain.onTimeout': 'force',
  'drain.pollInterval': '7s',
  'verify.http.path': '/up',
  'verify.http.expectStatus': 204,
  'verify.http.versionFrom': { header: 'x-version' },
  'verify.http.passes': 7,
  'verify.http.interval': '7s',
  'verify.http.timeout': '7m',
  'verify.http.requestTimeout': '7s',
  'failureBudget.maxFailPercent': 7,
  'progressDeadline.timeout': '7m',
  'progressDeadline.action': 'pause',
  'notify.webhook.url': 'http://127.0.0.1:9/hook',
  'notify.webhook.urlFromEnv': 'SLACK_WEBHOOK_URL',
  'notify.webhook.format': 'slack',
  'notify.webhook.events': ['succeeded'],
};

/** Strategies that create servers (provision) rather than upgrade them in place, and rolling by replacement. */
const createsServers = (strategy: string, method?: string) =>
  strategy === 'blue-green' || strategy === 'surge' || (strategy === 'rolling' && method === 'replace');

/** The smallest spec of each kind and strategy; a fleet that creates servers gives provision, not servers. */
function base(
  kind: 'fleet' | 'kubernetes',
  strategy: string,
  provisioned: boolean,
  method?: string,
): Record<string, unknown> {
  const strategyInput =
    strategy === 'canary'
      ? { type: 'canary', steps: [{ setWeight: 10 }, { analysis: { window: '1s' } }] }
      : { type: strategy };
  if (kind === 'kubernetes')
    return {
      target: { kind, name: 'web', deployment: 'web', container: 'app', image: 'registry.local/web' },
      version: 'v2',
      strategy: strategyInput,
    };
  const loadBalancer = { haproxy: { socket: '/run/haproxy/admin.sock', backend: 'web' } };
  // A fleet upgraded in place needs the command, whether Baton is given its servers or reads them from HAProxy.
  const upgrade = createsServers(strategy, method)
    ? {}
    : { upgrade: { argv: ['/usr/bin/deploy', '{name}', '{version}'] } };
  return {
    target: provisioned
      ? {
          kind,
          name: 'web',
          loadBalancer,
          provision: {
            create: { argv: ['/usr/bin/launch', '{name}'] },
            destroy: { argv: ['/usr/bin/end', '{name}'] },
          },
          ...upgrade,
        }
      : {
          kind,
          name: 'web',
          loadBalancer,
          servers: [{ name: 'web-1', address: '127.0.0.1:8081' }],
          ...upgrade,
        },
    version: 'v2',
    strategy: strategyInput,
  };
}

function getAt(root: Record<string, unknown>, path: readonly string[]): unknown {
  return path.reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], root);
}

function setAt(root: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = root;
  for (const key of path.slice(0, -1)) {
    node[key] ??= {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]] = value;
}

/**
 * Where Baton does not act on a field, with the path the refusal names; undefined where it does. Each entry says
 * why, and README.md says the same of each strategy.
 */
function refusedAt(name: string, kind: 'fleet' | 'kubernetes', strategy: string): string | undefined {
  const top = name.split('.')[0] ?? '';
  if (kind === 'kubernetes') {
    // Pods end through the Service and SIGTERM and are judged by readiness: drain and budget are fleets'.
    if (top === 'drain') return top;
    if (name === 'failureBudget.maxFailPercent') return name;
    if (name === 'strategy(rolling).pauseBetweenBatches') return 'strategy.pauseBetweenBatches';
    if (name === 'strategy(rolling).batchSize' || name === 'strategy(canary).batchSize')
      return 'strategy.batchSize';
    if (name === 'strategy(rolling).method') return 'strategy.method';
    if (name === 'target(kubernetes).mode' && strategy !== 'rolling') return 'target.mode';
    // Only a canary's analysis reads the pods' request figures.
    if (name.startsWith('target(kubernetes).metrics.') && strategy !== 'canary') return 'target.metrics';
    return undefined;
  }
  if (name === 'strategy(rolling).maxSurge') return 'strategy.maxSurge';
  if (name === 'strategy(blue-green).previewService') return 'strategy.previewService';
  // The failure budget lets a rolling rollout in place go on past failed servers; every other one rolls back.
  if (name === 'failureBudget.maxFailPercent' && strategy !== 'rolling') return name;
  return undefined;
}

function parse(input: Record<string, unknown>): { ok: true } | { ok: false; paths: string[]; text: string } {
  try {
    parseRolloutSpec(input as RolloutSpecInput);
    return { ok: true };
  } catch (error) {
    assert.ok(error instanceof SpecError, String(error));
    return { ok: false, paths: error.problems.map((p) => p.path), text: error.message };
  }
}

const fields = leavesOf(rolloutJsonSchema() as JsonSchema);

describe('every spec field, on every target and strategy: in force, or refused by name', () => {
  it('knows a sample for every field of the schema', () => {
    assert.deepEqual(
      fields.map(fieldName).filter((name) => !(name in samples)),
      [],
      'fields of the schema with no sample here: add one, and say where Baton refuses it',
    );
    assert.ok(fields.length > 60, `${fields.length} fields`);
  });

  for (const kind of ['fleet', 'kubernetes'] as const) {
    for (const strategy of strategyTypes) {
      it(`${kind}, ${strategy}: each field is accepted or refused as the table says`, () => {
        let checked = 0;
        for (const field of fields) {
          if (field.target && field.target !== kind) continue;
          if (field.strategy && field.strategy !== strategy) continue;
          // Discriminators pick the variant; they are not fields a user sets to ask for something.
          if (field.path.at(-1) === 'kind' && field.path[0] === 'target') continue;
          if (field.path.at(-1) === 'type' && field.path[0] === 'strategy') continue;
          const name = fieldName(field);
          // A fleet field that only makes sense with the other shape of fleet gets that shape.
          const method = name === 'strategy(rolling).method' ? 'replace' : undefined;
          const wantsProvision =
            name.startsWith('target(fleet).provision') || createsServers(strategy, method);
          const wantsServers = name === 'target(fleet).servers' || name.startsWith('target(fleet).upgrade');
          if (kind === 'fleet' && wantsProvision && wantsServers) {
            // Servers (with an upgrade) and provision are the two shapes of a fleet: each is refused with the other.
            const input = base(kind, strategy, true);
            setAt(input, field.path, samples[name]);
            const result = parse(input);
            assert.ok(!result.ok, `${name} accepted beside provision`);
            assert.ok(
              result.paths.some((p) => p.startsWith('target.')),
              result.text,
            );
            checked++;
            continue;
          }
          const input = base(kind, strategy, kind === 'fleet' && wantsProvision, method);
          for (const sibling of field.siblings) {
            const path = [...field.path.slice(0, -1), sibling];
            if (getAt(input, path) === undefined) setAt(input, path, samples[fieldName({ ...field, path })]);
          }
          // Exactly one of url and urlFromEnv: the sample of one replaces the other's absence.
          setAt(input, field.path, samples[name]);
          if (name.startsWith('notify.webhook.') && !name.endsWith('url') && !name.endsWith('urlFromEnv'))
            setAt(input, ['notify', 'webhook', 'url'], 'http://127.0.0.1:9/hook');
          if (name === 'progressDeadline.action') setAt(input, ['progressDeadline', 'timeout'], '5m');
          const refused = refusedAt(name, kind, strategy);
          const result = parse(input);
          if (refused === undefined) {
            assert.ok(result.ok, `${kind} ${strategy}: ${name} refused:\n${result.ok ? '' : result.text}`);
          } else {
            assert.ok(!result.ok, `${kind} ${strategy}: ${name} accepted, but Baton would not act on it`);
            assert.ok(
              result.paths.some((p) => p === refused || p.startsWith(`${refused}.`)),
              `${name}: refusal names ${result.paths.join(', ')}, expected ${refused}:\n${result.text}`,
            );
            assert.match(
              result.text,
              /expected no |expected [a-z-]+ for the |expected in-place|expected side-by-side/,
            );
          }
          checked++;
        }
        assert.ok(checked > 20, `${checked} fields checked`);
      });
    }
  }
});
