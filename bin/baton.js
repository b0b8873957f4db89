#!/usr/bin/env node
// The `baton` command: runs the TypeScript CLI through tsx's require hook, so no build step stands between a
// clone and a working CLI.
'use strict';
require('tsx/cjs/api').register();
require('../client/cli.ts');
