import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { runCli } from '../../client/cli';
import type { Json } from '../helpers/hostile-specs';
import {
  breaksField,
  holderOf,
  leaves,
  objects,
  pathText,
  setAt,
  valid,
  wrongValue,
  at,
  hiddenCharacter,
} from '../helpers/hostile-specs';

const verbs = [
  'start',
  'retry',
  'undo',
  'status',
  'pause',
  'resume',
  'promote',
  'abort',
  'watch',
  'list',
  'history',
];
const targetVerbs = verbs.filter((v) => !['start', 'list'].includes(v));

let saved: string | undefined;
const specDir = mkdtempSync(join(tmpdir(), 'baton-hostile-specs-'));
after(() => rmSync(specDir, { recursive: true, force: true }));
before(() => {
  // Nothing listens here: if bad input ever reached Temporal, the CLI would fail to connect (exit 1), not exit 2,
  // and no workflow could start.
  saved = process.env.TEMPORAL_ADDRESS;
  process.env.TEMPORAL_ADDRESS = '127.0.0.1:1';
});
after(() => {
  if (saved === undefined) delete process.env.TEMPORAL_ADDRESS;
  else process.env.TEMPORAL_ADDRESS = saved;
});

/**
 * Runs the CLI in this process and returns its exit code and what it wrote to stderr. stdout is left alone: the
 * test runner reports to its parent through it, and none of these inputs gets as far as printing there.
 */
async function baton(args: string[]): Promise<{ code: number; stderr: string }> {
  const chunks: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => (chunks.push(String(chunk)), true)) as typeof write;
  process.exitCode = 0;
  try {
    await runCli(['node', 'baton', ...args]);
    return { code: Number(process.exitCode ?? 0), stderr: chunks.join('') };
  } finally {
    process.stderr.write = write;
    process.exitCode = 0;
  }
}

const word = fc.stringMatching(/^[a-z][a-z-]{0,11}$/);
/** Target names with characters a target can't have: shell syntax, spaces, slashes, or a leading dash or dot. */
const hostileTarget = fc.oneof(
  fc.constantFrom(
    'web-1;touch /tmp/pwned',
    '$(id)',
    '`id`',
    'a b',
    '../etc',
    'web/1',
    'x'.repeat(64),
    '.web',
  ),
  fc
    .tuple(
      fc.stringMatching(/^[a-z]{1,8}$/),
      fc.constantFrom(';', '$', '(', ' ', '/', '&', '|', '>', '"', "'"),
    )
    .map(([name, bad]) => `${name}${bad}${name}`),
);

describe('baton CLI: hostile arguments (fast-check, over 1,000 generated)', () => {
  it('an unknown verb: exit 2, says so', async () => {
    await fc.assert(
      fc.asyncProperty(
        word.filter((w) => !verbs.includes(w) && w !== 'completion' && w !== 'help'),
        async (verb) => {
          const { code, stderr } = await baton([verb]);
          assert.equal(code, 2);
          assert.match(stderr, /unknown command/);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('an unknown option on any verb: exit 2, names it', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...verbs), word, async (verb, option) => {
        const target = targetVerbs.includes(verb) ? ['web'] : verb === 'start' ? ['-f', 'rollout.yaml'] : [];
        const { code, stderr } = await baton([verb, ...target, `--zz-${option}`]);
        assert.equal(code, 2);
        assert.match(stderr, new RegExp(`unknown option '--zz-${option}'`));
      }),
      { numRuns: 200 },
    );
  });

  it('an output format that is not table, json or yaml: exit 2, lists the choices', async () => {
    await fc.assert(
      fc.asyncProperty(
        word.filter((w) => !['table', 'json', 'yaml'].includes(w)),
        async (format) => {
          const { code, stderr } = await baton(['status', 'web', '-o', format]);
          assert.equal(code, 2);
          assert.match(stderr, /Allowed choices are table, json, yaml/);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a target name no spec could have: exit 2 before any connection, saying what a name may hold', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...targetVerbs), hostileTarget, async (verb, target) => {
        const { code, stderr } = await baton([verb, target]);
        assert.equal(code, 2, stderr);
        assert.match(stderr, /expected 1-63 letters, digits/);
        assert.doesNotMatch(stderr, /unreachable|ECONNREFUSED/);
      }),
      { numRuns: 300 },
    );
  });

  it('a reason with a control, invisible or bidirectional character: exit 2, the character named, not echoed', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('pause', 'resume', 'promote', 'abort'),
        hiddenCharacter,
        fc.stringMatching(/^[a-z ]{0,12}$/),
        async (verb, hidden, text) => {
          const { code, stderr } = await baton([verb, 'web', '--reason', `${text}${hidden}${text}`]);
          assert.equal(code, 2, stderr);
          assert.match(
            stderr,
            /expected visible text: found the invisible or control character U\+[0-9A-F]{4}/,
          );
          assert.ok(!stderr.includes(hidden), 'the character itself is not printed');
        },
      ),
      { numRuns: 100 },
    );
  });

  it('a limit or phase list cannot take: exit 2', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.integer({ max: 0 }).map((n) => ['--limit', String(n)]),
          word.map((w) => ['--limit', w]),
          word
            .filter((w) => !['starting', 'progressing', 'paused', 'succeeded', 'failed'].includes(w))
            .map((w) => ['--phase', w]),
        ),
        async (args) => {
          const { code, stderr } = await baton(['list', ...args]);
          assert.equal(code, 2, stderr);
          assert.match(stderr, /expected a whole number above 0|Allowed choices are/);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('baton start: hostile spec files (fast-check, over 1,000 generated)', () => {
  let files = 0;
  /** Writes a spec file as a user would (YAML, or JSON) and starts it; Temporal is unreachable on purpose. */
  async function start(text: string): Promise<{ code: number; stderr: string }> {
    const file = join(specDir, `spec-${files++}.yaml`);
    writeFileSync(file, text);
    return baton(['start', '-f', file]);
  }
  /** Exit 2 naming `field`, and nothing reached Temporal (a connection attempt would fail with exit 1). */
  const rejected = ({ code, stderr }: { code: number; stderr: string }, field: string) => {
    assert.equal(code, 2, stderr);
    assert.ok(stderr.includes(field), `${field} not named in: ${stderr}`);
    assert.doesNotMatch(stderr, /unreachable|ECONNREFUSED|cannot reach/);
  };

  it('a wrong value or type in any field: exit 2, the field named, no workflow started', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...leaves), wrongValue, fc.boolean(), async (path, value, asJson) => {
        const spec = valid() as unknown as Json;
        fc.pre(breaksField(spec, path, value));
        setAt(spec, path, value);
        const field = pathText(path);
        const result = await start(asJson ? JSON.stringify(spec) : stringify(spec));
        rejected(result, field.split(/[.[]/)[0] ?? field);
        // Each problem is a line "<path>: <what>": one names the field, a field inside it, or the list item or
        // union member that directly holds it ("target.servers[0]" for "target.servers[0].name").
        const reported = [...result.stderr.matchAll(/^\s*([\w.[\]]+): /gm)].map((m) => m[1] ?? '');
        assert.ok(
          reported.some((p) => p === field || p.startsWith(field) || p === holderOf(field)),
          `${field} not named in: ${result.stderr}`,
        );
      }),
      { numRuns: 500 },
    );
  });

  it('an unknown field anywhere: exit 2, the field named, no workflow started', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...objects),
        fc.stringMatching(/^[a-z][a-zA-Z]{2,10}$/),
        async (path, key) => {
          const spec = valid() as unknown as Json;
          const node = at(spec, path);
          fc.pre(!(key in node));
          node[key] = 'x';
          rejected(await start(stringify(spec)), key);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('text that is no spec at all, and oversized files: exit 2, no workflow started', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string(),
          fc.jsonValue().map((v) => JSON.stringify(v)),
        ),
        async (text) => {
          const { code, stderr } = await start(text);
          assert.equal(code, 2, stderr);
          assert.doesNotMatch(stderr, /unreachable|ECONNREFUSED|cannot reach/);
        },
      ),
      { numRuns: 150 },
    );
    rejected(await start(`# ${'x'.repeat(5 * 1024 * 1024)}\n${stringify(valid())}`), 'at most 4194304 bytes');
  });
});
