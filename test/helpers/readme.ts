import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The commands of README.md's sh blocks, in order: continuation lines joined, comments kept, blanks dropped. */
export function readmeCommands(markdown: string): string[] {
  const commands: string[] = [];
  let inShell = false;
  let pending = '';
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) {
      inShell = !inShell && line.trim() === '```sh';
      continue;
    }
    if (!inShell) continue;
    const joined = pending ? `${pending}${line.trim()}` : line;
    if (joined.endsWith('\\')) {
      pending = `${joined.slice(0, -1).trimEnd()} `;
      continue;
    }
    pending = '';
    if (joined.trim() !== '' && !joined.trim().startsWith('#')) commands.push(joined.trim());
  }
  return commands;
}

/** README.md's commands that start with `prefix`, as written: for tests that run them where they apply. */
export function readmeCommandsStartingWith(prefix: string): string[] {
  const markdown = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');
  return readmeCommands(markdown).filter((line) => line.startsWith(prefix));
}
