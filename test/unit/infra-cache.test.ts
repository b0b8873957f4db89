import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cacheRoot, componentDir, ensureComponent } from '../../infra/cache';
import { goInstalled } from '../../infra/go-install';

let cacheHome: string;
before(async () => {
  // A private cache for these tests; the real one holds the Temporal CLI the other tests use.
  cacheHome = await mkdtemp(join(tmpdir(), 'baton-cache-test-'));
  process.env.XDG_CACHE_HOME = cacheHome;
});
after(() => rm(cacheHome, { recursive: true, force: true }));

describe('the component cache', () => {
  it('lives under $XDG_CACHE_HOME/baton, else ~/.cache/baton', () => {
    assert.equal(cacheRoot({ XDG_CACHE_HOME: '/x' }), '/x/baton');
    assert.match(cacheRoot({}), /\/\.cache\/baton$/);
  });

  it('builds a component once, keyed by version, and finds it again without building', async () => {
    let builds = 0;
    const component = {
      name: 'tool',
      version: 'v1.0.0',
      files: ['bin/tool'],
      build: async (staging: string) => {
        builds++;
        await mkdir(join(staging, 'bin'));
        await writeFile(join(staging, 'bin', 'tool'), '#!/bin/sh\n');
      },
    };
    const dir = await ensureComponent(component);
    assert.equal(dir, join(cacheHome, 'baton', 'tool', 'v1.0.0'));
    const started = performance.now();
    assert.equal(await ensureComponent(component), dir);
    assert.ok(performance.now() - started < 100, 'a warm look-up takes milliseconds');
    assert.equal(builds, 1);
    await ensureComponent({ ...component, version: 'v2.0.0' });
    assert.equal(builds, 2, 'another version is another build');
  });

  it('leaves nothing behind when a build fails, so the next run builds again', async () => {
    const component = {
      name: 'broken',
      version: 'v1',
      files: ['bin/broken'],
      build: async (staging: string) => {
        await writeFile(join(staging, 'half-written'), '');
        throw new Error('compiler crashed');
      },
    };
    await assert.rejects(ensureComponent(component), /compiler crashed/);
    assert.equal(existsSync(componentDir(component)), false);
    assert.deepEqual(readdirSync(dirname(componentDir(component))), []);
  });

  it('fails when a build does not produce the files it promised', async () => {
    await assert.rejects(
      ensureComponent({ name: 'empty', version: 'v1', files: ['bin/x'], build: () => Promise.resolve() }),
      /did not produce bin\/x/,
    );
  });

  it('says clearly when the Go module proxy cannot be reached', async () => {
    const component = goInstalled({
      name: 'unreachable',
      module: 'example.com/baton/does-not-exist',
      version: 'v1.0.0',
      binary: 'x',
      env: {
        GOPROXY: 'http://127.0.0.1:9',
        GOFLAGS: '-mod=mod',
        GONOSUMDB: '*',
        GONOSUMCHECK: '1',
        GOFLAGS_EXTRA: '',
      },
    });
    await assert.rejects(
      ensureComponent(component),
      /could not reach the Go module proxy .*to build unreachable/s,
    );
  });
});
