import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { SpecProblem } from '../../spec';
import { parseRolloutSpec, parseRolloutSpecText, SpecError } from '../../spec';
import type { Json } from '../helpers/hostile-specs';
import {
  at,
  breaksField,
  holderOf,
  leaves,
  objects,
  pathText,
  setAt,
  valid,
  wrongValue,
} from '../helpers/hostile-specs';

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

/**
 * Whether a problem is reported at the changed field, inside it, or at the list item or union member that
 * directly holds it ("target.servers[0]" for "target.servers[0].name"): never only at a top-level section.
 */
const names = (problems: SpecProblem[], path: string) =>
  problems.some((p) => p.path === path || p.path.startsWith(path) || p.path === holderOf(path));

describe('hostile and malformed specs (property-based, fast-check)', () => {
  it('rejects a wrong value in any field, naming that field', () => {
    fc.assert(
      fc.property(fc.constantFrom(...leaves), wrongValue, (path, value) => {
        const spec = valid() as unknown as Json;
        fc.pre(breaksField(spec, path, value));
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
