import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { z } from 'zod';

const manifest = z
  .object({ scripts: z.record(z.string(), z.string()) })
  .parse(JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')));

describe('npm scripts', () => {
  // The tsx command runs a script in a child process and relays Ctrl-C to it; a child that has not answered the
  // relay within about 60 ms (its event loop busy, the machine loaded) is sent SIGKILL, so the demo's or the test
  // runner's cleanup never runs and its Temporal server and servers go on running. `node --import tsx` runs the
  // script in the process the signal reaches.
  for (const [name, command] of Object.entries(manifest.scripts)) {
    it(`${name} runs its TypeScript in the process that Ctrl-C reaches`, () => {
      assert.doesNotMatch(
        command,
        /(^|[;&|]\s*)(npx\s+)?tsx\s/,
        `"${name}": "${command}" runs under the tsx command`,
      );
    });
  }
});
