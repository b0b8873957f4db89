// Preloaded by a test (node -r): replaces the CLI module with one whose command never settles, as a bug that
// forgot to await or resolve would, to prove that bin/baton.js then exits non-zero instead of 0.
'use strict';
const Module = require('node:module');
const { join } = require('node:path');
const filename = join(__dirname, '..', '..', 'client', 'cli.ts');
const stub = new Module(filename);
stub.filename = filename;
stub.loaded = true;
stub.exports = { runCli: () => new Promise(() => undefined) };
require.cache[filename] = stub;
