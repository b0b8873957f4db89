import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { buildCli } from '../../client/cli';
import { completionScript } from '../../client/completion';

/** Asks real bash what the script completes for a command line, the cursor at its last word. */
function complete(line: string[]): string[] {
  const script = completionScript(buildCli(), 'bash');
  const words = line.map((w) => `'${w}'`).join(' ');
  const out = execFileSync(
    'bash',
    [
      '-c',
      `${script}\nCOMP_WORDS=(${words}); COMP_CWORD=${line.length - 1}; _baton_complete; printf '%s\\n' "\${COMPREPLY[@]}"`,
    ],
    { encoding: 'utf8' },
  );
  return out.split('\n').filter(Boolean).sort();
}

describe('baton completion', () => {
  it('completes verbs, each verb’s flags, and the values of flags with choices, in real bash', () => {
    assert.deepEqual(complete(['baton', 'st']), ['start', 'status']);
    assert.deepEqual(complete(['baton', 'promote', '--f']), ['--full']);
    assert.deepEqual(complete(['baton', 'status', 'web', '-o', 'j']), ['json']);
    assert.deepEqual(complete(['baton', 'list', '--phase', 'ro']), ['rolled-back', 'rolling-back']);
    assert.deepEqual(complete(['baton', 'completion', '']), ['--help', 'bash', 'zsh']);
  });

  it('covers every verb of the CLI, so it never drifts from it', () => {
    const script = completionScript(buildCli(), 'bash');
    for (const command of buildCli().commands)
      assert.match(script, new RegExp(`\\n    ${command.name()}\\) words=`));
    assert.match(completionScript(buildCli(), 'zsh'), /bashcompinit/);
  });
});
