import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { SpecProblem } from '../../spec';
import { parseRolloutSpec, parseRolloutSpecText, SpecError } from '../../spec';
import { minimalFleetSpecInput } from '../helpers/specs';

/** A valid fleet spec; each property below breaks it in one place. */
const valid = () => {
  const minimal = minimalFleetSpecInput();
  return {
    ...minimal,
    target: { ...minimal.target, upgrade: { ...minimal.target.upgrade, timeout: '1m' } },
    strategy: { type: 'rolling', batchSize: 1, maxUnavailable: 1, pauseBetweenBatches: '0s' },
    drain: { timeout: '30s', onTimeout: 'fail', pollInterval: '250ms' },
    verify: {
      http: {
        path: '/healthz',
        expectStatus: 200,
        passes: 3,
        interval: '1s',
        timeout: '30s',
        requestTimeout: '2s',
      },
    },
    failureBudget: { maxFailPercent: 0 },
  };
};

type Json = Record<string, unknown>;

/** Leaves of the valid spec: where a wrong value can go. */
const leaves: ReadonlyArray<readonly (string | number)[]> = [
  ['target', 'kind'],
  ['target', 'name'],
  ['target', 'loadBalancer', 'haproxy', 'socket'],
  ['target', 'loadBalancer', 'haproxy', 'backend'],
  ['target', 'servers', 0, 'name'],
  ['target', 'servers', 1, 'address'],
  ['target', 'upgrade', 'argv'],
  ['target', 'upgrade', 'timeout'],
  ['version'],
  ['strategy', 'type'],
  ['strategy', 'batchSize'],
  ['strategy', 'maxUnavailable'],
  ['strategy', 'pauseBetweenBatches'],
  ['drain', 'timeout'],
  ['drain', 'onTimeout'],
  ['verify', 'http', 'path'],
  ['verify', 'http', 'expectStatus'],
  ['verify', 'http', 'passes'],
  ['failureBudget', 'maxFailPercent'],
];

/** Objects of the valid spec: where an unknown field can go. */
const objects: ReadonlyArray<readonly (string | number)[]> = [
  [],
  ['target'],
  ['target', 'loadBalancer', 'haproxy'],
  ['target', 'servers', 0],
  ['target', 'upgrade'],
  ['strategy'],
  ['drain'],
  ['verify', 'http'],
  ['failureBudget'],
];

const pathText = (path: readonly (string | number)[]) =>
  path.reduce<string>(
    (out, key) => (typeof key === 'number' ? `${out}[${key}]` : out ? `${out}.${key}` : key),
    '',
  );

function at(root: Json, path: readonly (string | number)[]): Json {
  return path.reduce<Json>((node, key) => node[key] as Json, root);
}

function setAt(root: Json, path: readonly (string | number)[], value: unknown): void {
  const parent = at(root, path.slice(0, -1));
  parent[path[path.length - 1] as string] = value;
}

/** Values no field of the spec accepts in place of what it holds (checked per field below). */
const wrongValue = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.constant([]),
  fc.constant({}),
  fc.double({ noNaN: false }).filter((n) => !Number.isInteger(n)),
  fc.integer({ min: -1_000_000, max: -1 }),
  fc.constantFrom(
    '',
    ' ',
    'web-1;touch /tmp/pwned',
    '$(id)',
    '`id`',
    'a b',
    '../../etc/passwd',
    '∞',
    'x'.repeat(300),
  ),
);

function expectRejected(input: unknown, path: string): SpecProblem[] {
  try {
    parseRolloutSpec(input);
  } catch (error) {
    assert.ok(error instanceof SpecError, `expected SpecError, got ${String(error)}`);
    assert.ok(error.problems.length > 0);
    for (const problem of error.problems) assert.ok(problem.message.length > 0);
    return [...error.problems];
  }
  assert.fail(`accepted a spec with a bad ${path}: ${JSON.stringify(input).slice(0, 300)}`);
}

/** Whether a problem is reported at the changed field, or at the union or list that holds it. */
const names = (problems: SpecProblem[], path: string) =>
  problems.some(
    (p) => p.path === path || (p.path !== '' && path.startsWith(p.path)) || p.path.startsWith(path),
  );

describe('hostile and malformed specs (property-based, fast-check)', () => {
  it('rejects a wrong value in any field, naming that field', () => {
    fc.assert(
      fc.property(fc.constantFrom(...leaves), wrongValue, (path, value) => {
        const spec = valid() as unknown as Json;
        const before = at(spec, path.slice(0, -1))[path[path.length - 1] as string];
        // Skip the few generated values that are in fact valid for the field they land in.
        const field = path.join('.');
        fc.pre(JSON.stringify(before) !== JSON.stringify(value));
        fc.pre(!(field === 'verify.http.path' && typeof value === 'string' && value.startsWith('/')));
        // The socket is a filesystem path, never given to a shell: any non-empty text is a valid one.
        fc.pre(
          !(field === 'target.loadBalancer.haproxy.socket' && typeof value === 'string' && value !== ''),
        );
        // A failure budget may be a fraction of a percent.
        fc.pre(
          !(
            field === 'failureBudget.maxFailPercent' &&
            typeof value === 'number' &&
            value >= 0 &&
            value <= 100
          ),
        );
        setAt(spec, path, value);
        const problems = expectRejected(spec, pathText(path));
        assert.ok(
          names(problems, pathText(path)),
          `${pathText(path)} not named in ${JSON.stringify(problems)}`,
        );
      }),
      { numRuns: 600 },
    );
  });

  it('rejects an unknown field anywhere, naming the field', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...objects),
        fc.string({ minLength: 1, maxLength: 20 }).filter((k) => !['__proto__', 'constructor'].includes(k)),
        fc.jsonValue(),
        (path, key, value) => {
          const spec = valid() as unknown as Json;
          const node = at(spec, path);
          fc.pre(!(key in node));
          node[key] = value;
          const problems = expectRejected(spec, pathText(path));
          assert.ok(
            problems.some((p) => p.path === pathText(path) && p.message.includes(key)),
            `${key} at ${pathText(path)} not named in ${JSON.stringify(problems)}`,
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects names and versions carrying shell syntax or spaces', () => {
    const hostile = fc
      .tuple(
        fc.stringMatching(/^[a-z0-9]{0,8}$/),
        fc.constantFrom(';', '|', '&', '$', '`', '(', ')', ' ', '\n', '"', "'", '<', '>', '*', '/', '\\'),
        fc.stringMatching(/^[a-z0-9 ]{0,8}$/),
      )
      .map(([a, bad, b]) => `${a}${bad}${b}`);
    fc.assert(
      fc.property(
        hostile,
        fc.constantFrom<readonly (string | number)[]>(
          ['version'],
          ['target', 'name'],
          ['target', 'servers', 0, 'name'],
          ['target', 'loadBalancer', 'haproxy', 'backend'],
        ),
        (value, path) => {
          const spec = valid() as unknown as Json;
          setAt(spec, path, value);
          assert.ok(names(expectRejected(spec, pathText(path)), pathText(path)));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('rejects text that is not a spec at all, without crashing', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.jsonValue().map((v) => JSON.stringify(v)),
        ),
        (text) => {
          assert.throws(() => parseRolloutSpecText(text, 'fuzz.yaml'), SpecError);
        },
      ),
      { numRuns: 300 },
    );
  });
});
