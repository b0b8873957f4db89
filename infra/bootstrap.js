#!/usr/bin/env node
// Runs before `npm test` and `npm run demo` on a fresh clone: installs node_modules from the lockfile when they
// are missing or older than it. `npm install` rather than `npm ci`: some mirrors lack @swc/core's builds for other
// platforms, which `npm ci` refuses as an out-of-sync lockfile while `npm install` skips them as optional.
// Plain JavaScript with no dependencies, since it runs before any are installed.
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
  process.stderr.write('[baton infra] installing node modules from package-lock.json (npm install)…\n');
  const result = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: root,
    stdio: 'inherit',
  });
  if (result.status !== 0) {
    process.stderr.write('[baton infra] npm install failed: is the npm registry reachable?\n');
    process.exit(result.status ?? 1);
  }
  writeFileSync(stamp, `${wanted}\n`);
}
