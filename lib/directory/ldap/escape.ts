/**
 * Untrusted text on its way into LDAP. Filters use ldapts's `escapeFilter` (RFC 4515: `*`, `(`, `)`, `\`
 * and NUL become `\2a` `\28` `\29` `\5c` `\00`); DN values built from a template are escaped here per
 * RFC 4514, which ldapts's RDN helper does not follow (it quotes instead and leaves NUL as is).
 */
export { escapeFilter } from 'ldapts';

/**
 * Longest login or address we send to the directory. An SMTP path is at most 256 octets (RFC 5321
 * 4.5.3.1.3); anything longer is refused before it reaches LDAP.
 */
export const MAX_INPUT_LENGTH = 256;

/** RFC 4514 section 2.4: escapes one attribute value for use inside a DN string. */
export function escapeDnValue(value: string): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (ch === '\0') out += '\\00';
    else if ('"+,;<>\\='.includes(ch)) out += `\\${ch}`;
    else if ((ch === '#' || ch === ' ') && i === 0) out += `\\${ch}`;
    else if (ch === ' ' && i === value.length - 1) out += '\\ ';
    else out += ch;
  }
  return out;
}

/**
 * True when a login or address may be sent to the directory at all: not empty, not longer than
 * MAX_INPUT_LENGTH, no control characters (NUL, CR, LF …) and no surrounding whitespace. Filter
 * metacharacters are allowed here: escaping makes them literal, and the directory finds nobody.
 */
export function acceptableInput(value: string): boolean {
  if (value.length === 0 || value.length > MAX_INPUT_LENGTH) return false;
  if (value.trim() !== value) return false;
  // eslint-disable-next-line no-control-regex
  return !/[\u0000-\u001f\u007f]/.test(value);
}
