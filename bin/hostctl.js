#!/usr/bin/env node
// The demo fleet's host supervisor (infra/fleet/hostctl.ts), runnable from any working directory: fleet specs'
// upgrade argv call it by absolute path.
'use strict';
require('tsx/cjs/api').register();
require('../infra/fleet/hostctl.ts');
