/**
 * IMAP flags ↔ Maildir info letters (`:2,DFPRST` for system flags, `a`–`z` for keywords), sorted as the
 * Maildir spec asks. Keywords ($Forwarded, $Junk, Thunderbird's $label1 …) are kept per folder in
 * `dovecot-keywords` ("<index> <name>" lines, index 0 = letter a), Dovecot's own format, so a folder
 * moved between Dovecot and mailfleetd keeps its keywords. At most 26 keywords per folder (a–z).
 */

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

/** The system flags a client may set (PERMANENTFLAGS adds the folder's keywords and \*). */
export const SYSTEM_FLAGS: readonly string[] = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'];

/** Keyword file in each folder (Dovecot's name and format). */
export const KEYWORDS_FILE = 'dovecot-keywords';
export const MAX_KEYWORDS = 26;

export function flagLetter(flag: string): string | undefined {
  return TO_LETTER[flag.toLowerCase()];
}

/** A keyword is any flag not starting with a backslash (\Recent and unknown system flags are not stored). */
export function isKeyword(flag: string): boolean {
  return !flag.startsWith('\\');
}

/** Flags of a letter set: system flags, then keywords by their letter in `keywords` (index 0 = a). */
export function lettersToFlags(letters: string, keywords: readonly string[] = []): string[] {
  const out: string[] = [];
  for (const l of letters) {
    const f = TO_FLAG[l] ?? (l >= 'a' && l <= 'z' ? keywords[l.charCodeAt(0) - 97] : undefined);
    if (f) out.push(f);
  }
  return out;
}

/** The letter of a keyword in the table (case-insensitive, as IMAP compares flags), if it has one. */
export function keywordLetter(keyword: string, keywords: readonly string[]): string | undefined {
  const k = keyword.toLowerCase();
  const i = keywords.findIndex((x) => x.toLowerCase() === k);
  return i >= 0 && i < MAX_KEYWORDS ? String.fromCharCode(97 + i) : undefined;
}

/** Normalises a letter set: unique, sorted ASCII (Maildir requires it), unknown letters kept. */
export function sortLetters(letters: string): string {
  return [...new Set(letters)].sort().join('');
}

/** Letters of flags; keywords without a letter in `keywords` are left out. */
export function flagsToLetters(flags: readonly string[], keywords: readonly string[] = []): string {
  let s = '';
  for (const f of flags) s += flagLetter(f) ?? (isKeyword(f) ? (keywordLetter(f, keywords) ?? '') : '');
  return sortLetters(s);
}

export function parseKeywords(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+) (\S+)$/.exec(line.trim());
    if (m && Number(m[1]) < MAX_KEYWORDS) out[Number(m[1])] = m[2]!;
  }
  return out;
}

export function serialiseKeywords(keywords: readonly string[]): string {
  return keywords.map((k, i) => (k ? `${i} ${k}\n` : '')).join('');
}
