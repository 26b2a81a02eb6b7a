/**
 * Mailbox names: IMAP wire names are modified UTF-7 with '.' as the hierarchy delimiter (Maildir++,
 * as Dovecot's default Maildir layout). On disk a folder is `<Maildir>/.<wire name>`, so a valid name is
 * always one directory entry inside the user's Maildir: names that could leave it are refused.
 */
import { join } from 'node:path';
import { MailfleetError } from '../../errors.js';
import { decodeMutf7, encodeMutf7 } from './mutf7.js';

export const DELIMITER = '.';
const MAX_WIRE_LENGTH = 200;

/** Canonical Unicode name from a client's wire name; INBOX is case-insensitive. Throws MAILBOX_INVALID_NAME. */
export function nameFromWire(wire: string): string {
  const name = decodeMutf7(wire);
  if (name === undefined) throw invalid(wire, 'not valid modified UTF-7');
  return checkName(name);
}

export function checkName(name: string): string {
  if (name.toUpperCase() === 'INBOX') return 'INBOX';
  if (name.length === 0) throw invalid(name, 'empty');
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (/[\x00-\x1f\x7f/\\]/.test(name)) throw invalid(name, 'contains a control character, / or \\');
  if (name.split(DELIMITER).some((c) => c.length === 0)) throw invalid(name, 'has an empty hierarchy level');
  if (/[%*]/.test(name)) throw invalid(name, 'contains a wildcard');
  if (encodeMutf7(name).length > MAX_WIRE_LENGTH) throw invalid(name, 'too long');
  // INBOX.x keeps INBOX's canonical spelling as its first level.
  const first = name.split(DELIMITER)[0]!;
  return first.toUpperCase() === 'INBOX' ? `INBOX${name.slice(first.length)}` : name;
}

export function nameToWire(name: string): string {
  return encodeMutf7(name);
}

/** The folder directory of a checked name inside a user's Maildir. */
export function folderDir(maildir: string, name: string): string {
  return name === 'INBOX' ? maildir : join(maildir, `.${encodeMutf7(name)}`);
}

/** The name a Maildir++ directory entry stands for, or undefined when it is not a folder of ours. */
export function nameFromEntry(entry: string): string | undefined {
  if (!entry.startsWith('.') || entry === '.' || entry === '..') return undefined;
  try {
    return nameFromWire(entry.slice(1));
  } catch {
    return undefined;
  }
}

function invalid(name: string, why: string): MailfleetError {
  return new MailfleetError('MAILBOX_INVALID_NAME', `invalid mailbox name ${JSON.stringify(name)}: ${why}`, { status: 400 });
}
