import type { Command } from 'commander';

const quote = (words: readonly string[]) => words.join(' ');

/** What may follow a verb: the choices of its arguments, then every flag (long and short), --help included. */
function wordsOf(command: Command): string[] {
  return [
    ...command.registeredArguments.flatMap((argument) => argument.argChoices ?? []),
    ...command.options.flatMap((option) => [option.long, option.short].filter((f): f is string => !!f)),
    '--help',
  ];
}

/**
 * A bash completion script for a commander program, generated from its own command tree so it never drifts
 * from the CLI: verbs, each verb's flags, the values of flags with choices, and file names after -f/--file.
 * zsh loads the same script through bashcompinit.
 */
export function completionScript(program: Command, shell: 'bash' | 'zsh'): string {
  const name = program.name();
  const fn = `_${name.replace(/[^A-Za-z0-9]/g, '_')}_complete`;
  const verbs = program.commands.map((c) => c.name());
  const choiceCases = new Map<string, readonly string[]>();
  for (const command of [program, ...program.commands])
    for (const option of command.options) {
      const choices = option.argChoices;
      if (!choices) continue;
      for (const flag of [option.long, option.short]) if (flag) choiceCases.set(flag, choices);
    }
  const lines = [
    `# ${name} completion for ${shell}: eval "$(${name} completion ${shell})", or save it where ${shell} loads completions.`,
    ...(shell === 'zsh' ? ['autoload -U +X bashcompinit && bashcompinit'] : []),
    `${fn}() {`,
    '  local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" verb="${COMP_WORDS[1]}" words=""',
    '  if [[ $COMP_CWORD -eq 1 ]]; then',
    `    COMPREPLY=($(compgen -W "${quote(verbs)} --help --version" -- "$cur"))`,
    '    return',
    '  fi',
    '  case "$prev" in',
    ...[...choiceCases].map(
      ([flag, choices]) => `    ${flag}) COMPREPLY=($(compgen -W "${quote(choices)}" -- "$cur")); return ;;`,
    ),
    '    -f|--file) COMPREPLY=($(compgen -f -- "$cur")); return ;;',
    '  esac',
    '  case "$verb" in',
    ...program.commands.map((command) => `    ${command.name()}) words="${quote(wordsOf(command))}" ;;`),
    '  esac',
    '  COMPREPLY=($(compgen -W "$words" -- "$cur"))',
    '}',
    `complete -o default -F ${fn} ${name}`,
    '',
  ];
  return lines.join('\n');
}
