import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadRolloutSpecFile } from '../../spec';

const examples = join(__dirname, '..', '..', 'examples');

describe('examples/', () => {
  for (const file of readdirSync(examples).filter((f) => /\.ya?ml$|\.json$/.test(f))) {
    it(`${file} is a valid rollout spec`, async () => {
      const spec = await loadRolloutSpecFile(join(examples, file));
      assert.ok(spec.version);
    });
  }
});
