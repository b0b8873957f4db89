import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crashMatrix, crashSample } from '../chaos/crash-matrix';

describe("the crash matrix's sample in npm test", () => {
  it('kills the worker in every strategy and in every step of the matrix, each case once', () => {
    const sample = crashSample();
    assert.deepEqual(
      new Set(sample.map((c) => c.strategy)),
      new Set(crashMatrix.map((m) => m.strategy)),
      'every strategy',
    );
    assert.deepEqual(
      new Set(sample.map((c) => c.step)),
      new Set(crashMatrix.flatMap((m) => m.steps)),
      'every step',
    );
    const keys = sample.map((c) => `${c.strategy}/${c.step}`);
    assert.equal(new Set(keys).size, keys.length, 'no case twice');
    for (const c of sample)
      assert.ok(
        crashMatrix.some((m) => m.strategy === c.strategy && m.steps.includes(c.step)),
        `${c.strategy} has a ${c.step} step`,
      );
    assert.ok(sample.length < crashMatrix.flatMap((m) => m.steps).length / 2, 'a sample, not the matrix');
  });

  it('gives each strategy a step not yet covered, then adds each step still missing in its first strategy', () => {
    const matrix = [
      { strategy: 'rolling', steps: ['detach', 'drain', 'upgrade'], servers: 3 },
      { strategy: 'recreate', steps: ['detach'], servers: 3 },
      { strategy: 'blue-green', steps: ['drain', 'switch'], servers: 3 },
    ] as const;
    assert.deepEqual(
      crashSample(matrix).map((c) => `${c.strategy}/${c.step}`),
      ['rolling/detach', 'recreate/detach', 'blue-green/drain', 'rolling/upgrade', 'blue-green/switch'],
    );
  });
});
