/**
 * Characters no name, version, path or argument of a spec may hold: control characters (a terminal escape, a
 * newline inside an HAProxy command), format and bidirectional-override characters that make text read other than
 * it is (U+202E, U+2066), zero-width and other default-ignorable characters, line and paragraph separators, and
 * lone surrogates.
 */
const hiddenCharacter = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Default_Ignorable_Code_Point}]/u;
const hiddenCharacters = new RegExp(hiddenCharacter.source, 'gu');

/** The first hidden character of `text`, as U+XXXX, or undefined when it has none. */
export function hiddenCharacterIn(text: string): string | undefined {
  const found = hiddenCharacter.exec(text)?.[0];
  return found === undefined ? undefined : codePoint(found);
}

const codePoint = (char: string) =>
  `U+${(char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;

/** Text as it is safe to print to a terminal: every hidden character shown as <U+XXXX>. */
export function printable(text: string): string {
  return text.replace(hiddenCharacters, (char) => (char === '\n' ? char : `<${codePoint(char)}>`));
}

/** The message a field gets when it holds a hidden character. */
export const hiddenCharacterMessage = (found: string) =>
  `expected visible text: found the invisible or control character ${found}`;
