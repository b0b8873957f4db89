import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { compactVersions, expandVersions } from '../../workflows/continuation';

describe('versions carried between runs', () => {
  it('names the common version once and lists the others', () => {
    const compact = compactVersions({ 'web-1': 'v1', 'web-2': 'v1', 'web-3': 'v0', 'web-4': 'v1' });
    assert.deepEqual(compact, { common: 'v1', others: { 'web-3': 'v0' } });
    assert.deepEqual(compactVersions({}), { others: {} });
  });

  it('expands back to exactly the versions it was given, for any fleet', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.stringMatching(/^web-[0-9]{1,4}$/), fc.constantFrom('v1', 'v2', 'v3', '1.4.0')),
        (generated) => {
          const versions = { ...generated };
          const names = Object.keys(versions);
          assert.deepEqual(expandVersions(compactVersions(versions), names), versions);
        },
      ),
      { numRuns: 300 },
    );
  });
});
