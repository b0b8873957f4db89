#!/usr/bin/env node
// Runs before `npm test` and `npm run demo` on a fresh clone: installs node_modules from the lockfile when they
// are missing or older than it. Plain JavaScript with no dependencies, since it runs before any are installed.
'use strict';
const { createHash } = require('node:crypto');
const { existsSync, readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { spawnSync } = require('node:child_process');

const root = join(__dirname, '..');
const lock = join(root, 'package-lock.json');
const stamp = join(root, 'node_modules', '.baton-lock-sha256');
const wanted = createHash('sha256').update(readFileSync(lock)).digest('hex');

if (!existsSync(stamp) || readFileSync(stamp, 'utf8').trim() !== wanted) {
  process.stderr.write('[baton infra] installing node modules from package-lock.json (npm ci)…\n');
  const result = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: root,
    stdio: 'inherit',
  });
  if (result.status !== 0) {
    process.stderr.write('[baton infra] npm ci failed: is the npm registry reachable?\n');
    process.exit(result.status ?? 1);
  }
  writeFileSync(stamp, `${wanted}\n`);
}
