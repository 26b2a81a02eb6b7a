/**
 * IMAP4rev2 (RFC 9051) for a connection that sent `ENABLE IMAP4rev2` (§6.3.1); until then it is served
 * as IMAP4rev1, unchanged. The mode lives in the connection's modes object (condstore.ts ModseqModes),
 * which its SelectedMailbox shares by reference. What changes, command by command, and why each
 * Appendix E item is or is not a change here: docs/imap-rev2.md.
 */
import { nameToWire } from '../../store/mailbox/names.js';
import { bad } from './args.js';
import type { Key } from './commands/search.js';
import { modesOf } from './condstore.js';
import type { ImapSession } from './session.js';
import { istring } from './wire.js';

export function isRev2(s: ImapSession): boolean {
  return modesOf(s).rev2 === true;
}

export function enableRev2(s: ImapSession): void {
  modesOf(s).rev2 = true;
}

/**
 * A mailbox name as this session reads it: UTF-8 in a quoted string for IMAP4rev2 (RFC 9051 §5.1; its
 * quoted strings may hold UTF-8), modified UTF-7 for IMAP4rev1. Names hold no CR, LF or controls (checkName).
 */
export function mailboxWire(s: ImapSession, name: string): string {
  if (isRev2(s)) return `"${name.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  const wire = istring(nameToWire(name));
  return typeof wire === 'string' ? wire : nameToWire(name);
}

/** RFC 9051 removed the RECENT, NEW and OLD search keys with \Recent (Appendix E): BAD in rev2. */
export function refuseRecentKeys(s: ImapSession, key: Key): void {
  if (isRev2(s) && usesRecent(key)) throw bad('RECENT, NEW and OLD are not IMAP4rev2 search keys');
}

function usesRecent(k: Key): boolean {
  switch (k.op) {
    case 'recent':
      return true;
    case 'not':
      return usesRecent(k.key);
    case 'or':
      return usesRecent(k.a) || usesRecent(k.b);
    case 'and':
      return k.keys.some(usesRecent);
    default:
      return false;
  }
}
