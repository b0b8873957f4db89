#!/usr/bin/env node
// The `baton` command, however it is reached: `npx baton`, `npm run baton --`, a global install, `npm link`, a
// symlink, or `node bin/baton.js`. It runs the TypeScript CLI through tsx's require hook, so no build step stands
// between a clone and a working CLI, and it always runs it: nothing here depends on how argv[1] is spelled.
'use strict';
require('tsx/cjs/api').register();
const { runCli } = require('../client/cli.ts');

let settled = false;
process.on('exit', () => {
  // A command that never finished must not look like one that succeeded.
  if (settled) return;
  process.stderr.write('baton: the command ended before it finished; nothing was confirmed\n');
  process.exitCode = 70;
});
runCli(process.argv).then(
  () => {
    settled = true;
  },
  (error) => {
    settled = true;
    process.stderr.write(`baton: ${error && error.message ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
