// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const nodeBuiltins = [
  'assert',
  'buffer',
  'child_process',
  'cluster',
  'crypto',
  'dgram',
  'dns',
  'events',
  'fs',
  'fs/promises',
  'http',
  'http2',
  'https',
  'net',
  'os',
  'path',
  'perf_hooks',
  'process',
  'readline',
  'stream',
  'timers',
  'tls',
  'url',
  'util',
  'v8',
  'vm',
  'worker_threads',
  'zlib',
];

export default tseslint.config(
  { ignores: ['node_modules/**', 'spec/rollout.schema.json'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: {
          allowDefaultProject: ['eslint.config.mjs', 'bin/*.js', 'infra/*.js', 'test/helpers/*.js'],
        },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's describe/it/before/after return promises the runner itself tracks.
        {
          allowForKnownSafeCalls: [
            {
              from: 'package',
              package: 'node:test',
              name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'],
            },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // Workflow code is replayed: it must stay deterministic, so no Node built-ins and no I/O libraries.
    files: ['workflows/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.flatMap((name) => [
            {
              name,
              message: 'Workflow code is deterministic: no Node built-ins; put side effects in activities.',
            },
            { name: `node:${name}`, message: 'Workflow code is deterministic: no Node built-ins.' },
          ]),
          patterns: [
            {
              group: ['@temporalio/client', '@temporalio/worker', '@temporalio/activity', '@kubernetes/*'],
              // Types of activities are fine (proxyActivities needs them); their code would pull I/O into the bundle.
              allowTypeImports: true,
              message: 'Workflows may import only @temporalio/workflow, spec types and workflows/.',
            },
            {
              regex: '(^|/)activities(/|$)',
              allowTypeImports: true,
              message:
                'Workflows may import only the types of activities: call them through proxyActivities.',
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'process', message: 'Workflow code is deterministic.' },
        { name: 'setImmediate', message: 'Use @temporalio/workflow sleep.' },
      ],
      'no-restricted-properties': [
        'error',
        {
          object: 'Date',
          property: 'now',
          message:
            'Use workflow time via @temporalio/workflow; Date.now() is replay-unsafe outside the sandbox.',
        },
      ],
    },
  },
  {
    // Layers import downwards only (../shared/DESIGN.md): activities act for workflows and know nothing of them; what
    // the two share (failure types, the figures activities measure) is in spec/.
    files: ['activities/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\.{1,2}/(.*/)?(workflows|client|worker)(/|$)',
              message:
                'Activities may import Node, SDKs and spec/: what they share with workflows lives in spec/.',
            },
          ],
        },
      ],
    },
  },
  {
    // The CLI and the client library talk to workflows through their messages alone.
    files: ['client/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\.{1,2}/(.*/)?workflows(/(?!messages$).*)?$',
              message: 'The client may import from workflows/ only workflows/messages.',
            },
          ],
        },
      ],
    },
  },
  {
    // Pure planning code is imported by workflows and unit tests alike and may import nothing.
    files: ['workflows/plan/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: '^(?!\\./)', message: 'workflows/plan is pure: it imports only its own files.' },
          ],
        },
      ],
    },
  },
  {
    // Plain JavaScript: the entry points that run before dependencies or TypeScript load, and a test preload.
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      sourceType: 'commonjs',
      globals: { require: 'readonly', process: 'readonly', __dirname: 'readonly', module: 'writable' },
    },
    rules: { ...tseslint.configs.disableTypeChecked.rules, '@typescript-eslint/no-require-imports': 'off' },
  },
);
