import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { loadRolloutSpecFile, maxSpecBytes, SpecError } from '../../spec';
import { hiddenCharacterIn } from '../../spec/text';
import type { Json } from '../helpers/hostile-specs';
import {
  boundedNumbers,
  durationLeaves,
  hiddenCharacter,
  pathText,
  setAt,
  textLeaves,
  valid,
} from '../helpers/hostile-specs';
import { runToEnd } from '../helpers/process';

const root = join(__dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'baton-spec-files-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let written = 0;

function file(content: string | Buffer, name = `spec-${written++}.yaml`): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

/**
 * Loads `path` as `baton start -f` does and returns the one-line problem it was refused with; fails the test if it
 * was accepted, if anything but a SpecError came out, or if the answer took a second or more.
 */
async function refusal(path: string, overrides: { version?: string } = {}): Promise<string> {
  const started = performance.now();
  try {
    await loadRolloutSpecFile(path, overrides);
  } catch (error) {
    const took = performance.now() - started;
    assert.ok(error instanceof SpecError, `expected a SpecError, got ${String((error as Error)?.stack)}`);
    assert.ok(took < 1_000, `answered in ${Math.round(took)} ms`);
    assert.ok(error.message.startsWith(path), 'the message names the file');
    assert.equal(hiddenCharacterIn(error.message.replace(/\n/g, ' ')), undefined, 'nothing hidden printed');
    return error.message;
  }
  assert.fail(`accepted ${path}`);
}

describe('spec files of every shape: a clear refusal within a second, in bounded memory', () => {
  it('refuses a directory, a FIFO, a character device and a socket, without blocking on the FIFO', async () => {
    assert.match(await refusal(dir), /expected a regular file, got a directory/);
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    assert.match(await refusal(fifo), /expected a regular file, got a FIFO/);
    assert.match(await refusal('/dev/zero'), /expected a regular file, got a device/);
    assert.match(await refusal('/dev/null'), /expected a regular file, got a device/);
    const socketPath = join(dir, 'sock');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    try {
      assert.match(await refusal(socketPath), /expected a readable file: ENXIO|got a socket/);
    } finally {
      server.close();
    }
    symlinkSync(dir, join(dir, 'link-to-dir'));
    assert.match(await refusal(join(dir, 'link-to-dir')), /got a directory/);
    assert.match(await refusal(join(dir, 'missing.yaml')), /expected a readable file: ENOENT/);
  });

  it('counts bytes while reading: a 1 GiB sparse file stops at the limit, a /proc file of stat size 0 is read', async () => {
    const big = file('');
    truncateSync(big, 1024 ** 3);
    const rssBefore = process.memoryUsage().rss;
    assert.match(await refusal(big), new RegExp(`expected at most ${maxSpecBytes} bytes, the file has more`));
    assert.ok(process.memoryUsage().rss - rssBefore < 64 * 1024 ** 2, 'read no more than the limit');
    // /proc/self/status reports size 0 to stat but holds text: it is read, and refused for what it says.
    assert.match(await refusal('/proc/self/status'), /expected|Invalid input/);
    assert.doesNotMatch(await refusal('/proc/self/status'), /bytes/);
  });

  it('refuses text that is not UTF-8', async () => {
    assert.match(await refusal(file(Buffer.from([0x76, 0x3a, 0x20, 0xff, 0xfe, 0x0a]))), /expected UTF-8/);
  });

  it('caps nesting: 100,000 brackets, 100,000 braces and 2,000 indented levels are refused as too deep', async () => {
    const depth = /nested at most 32 levels deep/;
    assert.match(await refusal(file('['.repeat(100_000))), depth);
    assert.match(await refusal(file(`${'['.repeat(50_000)}${']'.repeat(50_000)}`)), depth);
    assert.match(await refusal(file(`${'{a: '.repeat(100_000)}1${'}'.repeat(100_000)}`)), depth);
    const indented = Array.from({ length: 2_000 }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n');
    assert.match(await refusal(file(`${indented} 1\n`)), depth);
    assert.match(await refusal(file(`version: v2\nx:\n  ${'- '.repeat(40)}1\n`)), depth);
  });

  it('bounds numbers and durations to what JavaScript and Temporal timers hold', async () => {
    const withValue = (path: readonly (string | number)[], value: unknown) => {
      const spec = valid() as unknown as Json;
      setAt(spec, path, value);
      return file(stringify(spec));
    };
    assert.match(
      await refusal(withValue(['strategy', 'batchSize'], 1e30)),
      /strategy.batchSize: .*(at most|whole number)/,
    );
    assert.match(
      await refusal(
        file(stringify(valid()).replace('batchSize: 1', 'batchSize: 123456789012345678901234567890')),
      ),
      /strategy.batchSize/,
    );
    assert.match(
      await refusal(file(stringify(valid()).replace('batchSize: 1', 'batchSize: .inf'))),
      /batchSize/,
    );
    assert.match(
      await refusal(file(stringify(valid()).replace('batchSize: 1', 'batchSize: .nan'))),
      /batchSize/,
    );
    assert.match(
      await refusal(withValue(['drain', 'timeout'], '99999999999h')),
      /drain.timeout: expected at most 8760h/,
    );
    assert.match(
      await refusal(withValue(['drain', 'timeout'], '8761h')),
      /drain.timeout: expected at most 8760h/,
    );
    assert.match(await refusal(withValue(['drain', 'timeout'], `${'9'.repeat(400)}ms`)), /drain.timeout/);
    assert.match(
      await refusal(withValue(['drain', 'timeout'], '1e5s')),
      /drain.timeout: expected a duration/,
    );
    assert.match(
      await refusal(withValue(['strategy'], { type: 'rolling', batchSize: 1, pauses: [{ after: 2 ** 53 }] })),
      /strategy.pauses\[0\].after/,
    );
    const accepted = valid() as unknown as Json;
    setAt(accepted, ['drain', 'timeout'], '8760h');
    assert.equal((await loadRolloutSpecFile(file(stringify(accepted)))).drain.timeout, 365 * 24 * 3_600_000);
  });

  it('refuses control, invisible and bidirectional characters in names, versions, paths and arguments', async () => {
    const cases: Array<[readonly (string | number)[], string, string]> = [
      [['target', 'name'], 'web\u202e1', 'U+202E'],
      [['version'], 'v2\u200b', 'U+200B'],
      [['target', 'loadBalancer', 'haproxy', 'socket'], '/run/haproxy/admin.sock\u0000', 'U+0000'],
      [['target', 'upgrade', 'argv', 1], '{name}\u2066', 'U+2066'],
      [['target', 'upgrade', 'argv', 0], '/usr/bin/\u001b[31mdeploy', 'U+001B'],
      [['verify', 'http', 'path'], '/health\u00adz', 'U+00AD'],
    ];
    for (const [path, value, shown] of cases) {
      const spec = valid() as unknown as Json;
      setAt(spec, path, value);
      const message = await refusal(file(JSON.stringify(spec)));
      assert.match(
        message,
        new RegExp(`${pathText(path).replace(/[[\].]/g, '\\$&')}: expected visible text`),
      );
      assert.ok(message.includes(shown), `${shown} named in ${message}`);
    }
    // A placeholder with a hidden character is named as the character, never echoed raw.
    const spec = valid() as unknown as Json;
    setAt(spec, ['target', 'upgrade', 'argv', 1], '{na\u202eme}');
    assert.match(await refusal(file(JSON.stringify(spec))), /U\+202E/);
  });

  it('refuses relative paths that the worker would resolve against its own directory', async () => {
    const socket = valid() as unknown as Json;
    setAt(socket, ['target', 'loadBalancer', 'haproxy', 'socket'], 'run/haproxy.sock');
    assert.match(
      await refusal(file(stringify(socket))),
      /target.loadBalancer.haproxy.socket: expected the absolute path of the admin socket/,
    );
    for (const program of ['./deploy.sh', 'bin/deploy', '../deploy']) {
      const spec = valid() as unknown as Json;
      setAt(spec, ['target', 'upgrade', 'argv', 0], program);
      assert.match(
        await refusal(file(stringify(spec))),
        /target.upgrade.argv\[0\]: expected a program on the worker's PATH or an absolute path/,
      );
    }
    const onPath = valid() as unknown as Json;
    setAt(onPath, ['target', 'upgrade', 'argv', 0], 'ssh');
    assert.equal((await loadRolloutSpecFile(file(stringify(onPath)))).target.kind, 'fleet');
  });

  it('--version overrides the version and is checked as the field itself', async () => {
    const path = file(stringify(valid()));
    assert.equal((await loadRolloutSpecFile(path, { version: 'v3' })).version, 'v3');
    assert.match(
      await refusal(path, { version: 'v3;reboot' }),
      /version \(from --version\): expected a version/,
    );
    assert.match(await refusal(path, { version: 'v3\u202e' }), /version \(from --version\).*U\+202E/);
  });
});

describe('hostile text in every text field (fast-check)', () => {
  it('a hidden character anywhere in a name, version, path or argument is refused, naming field and character', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...textLeaves),
        hiddenCharacter,
        fc.nat(),
        async (path, hidden, position) => {
          const spec = valid() as unknown as Json;
          const parent = path.slice(0, -1).reduce<Json>((node, key) => node[key] as Json, spec);
          const before = String(parent[path[path.length - 1] as string]);
          const at = position % (before.length + 1);
          setAt(spec, path, `${before.slice(0, at)}${hidden}${before.slice(at)}`);
          const message = await refusal(file(JSON.stringify(spec)));
          assert.ok(message.includes(pathText(path)), `${pathText(path)} named in ${message}`);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a number past its bound, or a duration past a year, is refused naming the field', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc
            .tuple(
              fc.constantFrom(...boundedNumbers),
              fc.oneof(fc.double({ min: 1, max: 1e300, noNaN: true }), fc.constant(Number.MAX_VALUE)),
            )
            .map(([[path, max], excess]) => [path, max + Math.max(1, Math.round(excess))] as const),
          fc
            .tuple(fc.constantFrom(...durationLeaves), fc.integer({ min: 8_761, max: 999_999_999_999 }))
            .map(([path, hours]) => [path, `${hours}h`] as const),
        ),
        async ([path, value]) => {
          const spec = valid() as unknown as Json;
          setAt(spec, path, value);
          const message = await refusal(file(stringify(spec)));
          assert.ok(message.includes(pathText(path)), `${pathText(path)} named in ${message}`);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('nesting of any depth past the cap, as flow or block YAML or JSON, is refused in time', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 33, max: 20_000 }),
        fc.constantFrom('json-array', 'json-object', 'yaml-block', 'yaml-sequence'),
        async (depth, shape) => {
          const text =
            shape === 'json-array'
              ? `${'['.repeat(depth)}${']'.repeat(depth)}`
              : shape === 'json-object'
                ? `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`
                : shape === 'yaml-block'
                  ? `${Array.from({ length: Math.min(depth, 2_000) }, (_, i) => `${' '.repeat(i)}k:`).join('\n')} 1\n`
                  : `x:\n  ${'- '.repeat(Math.min(depth, 5_000))}1\n`;
          assert.match(await refusal(file(text)), /nested at most 32 levels deep/);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('baton start -f on hostile files, as a user runs it', () => {
  it('exits 2 with one message naming the file, never a stack trace', async () => {
    const fifo = join(dir, 'cli-fifo');
    execFileSync('mkfifo', [fifo]);
    const big = file('');
    truncateSync(big, 64 * 1024 ** 2);
    const hidden = valid() as unknown as Json;
    setAt(hidden, ['target', 'name'], 'web\u001b[2J');
    for (const path of [
      dir,
      fifo,
      '/dev/zero',
      big,
      file('['.repeat(200_000)),
      file(JSON.stringify(hidden)),
      file(stringify(valid()).replace('batchSize: 1', 'batchSize: 1e400')),
    ]) {
      const { code, stdout, stderr } = await runToEnd(
        process.execPath,
        [join(root, 'bin', 'baton.js'), 'start', '-f', path],
        {
          env: { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1' },
        },
      );
      assert.equal(code, 2, `${path}: ${stderr}`);
      assert.equal(stdout, '');
      assert.ok(stderr.startsWith(`baton: ${path}`), stderr);
      assert.doesNotMatch(stderr, /\n\s+at |RangeError|TypeError/, 'no stack trace');
      assert.ok(!stderr.includes('\u001b'), 'no terminal escape echoed');
    }
  });
});
