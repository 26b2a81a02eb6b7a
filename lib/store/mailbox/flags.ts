/** IMAP system flags ↔ Maildir info letters (`:2,DFPRST`), sorted as the Maildir spec asks. */

const TO_LETTER: Readonly<Record<string, string>> = {
  '\\draft': 'D',
  '\\flagged': 'F',
  '\\answered': 'R',
  '\\seen': 'S',
  '\\deleted': 'T',
};
const TO_FLAG: Readonly<Record<string, string>> = {
  D: '\\Draft',
  F: '\\Flagged',
  R: '\\Answered',
  S: '\\Seen',
  T: '\\Deleted',
};

/** Flags a client may set; keywords are not stored (PERMANENTFLAGS has no \*). */
export const SYSTEM_FLAGS: readonly string[] = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'];

export function flagLetter(flag: string): string | undefined {
  return TO_LETTER[flag.toLowerCase()];
}

export function lettersToFlags(letters: string): string[] {
  const out: string[] = [];
  for (const l of letters) {
    const f = TO_FLAG[l];
    if (f) out.push(f);
  }
  return out;
}

/** Normalises a letter set: unique, sorted ASCII (Maildir requires it), unknown letters kept. */
export function sortLetters(letters: string): string {
  return [...new Set(letters)].sort().join('');
}

export function flagsToLetters(flags: readonly string[]): string {
  let s = '';
  for (const f of flags) s += flagLetter(f) ?? '';
  return sortLetters(s);
}
