/**
 * Where a mailbox lives: `<root>/<domain>/<localpart>/Maildir`, Maildir++ folders as `.<name>` inside it.
 * Address parts become directory names, so each is checked before it touches a path: nothing an SMTP
 * client can put in an envelope may leave the root ('/', '\', '..', NUL, control characters, leading
 * dots, over-long parts are refused with MailfleetError('BAD_REQUEST')).
 */
import { join } from 'node:path';
import { MailfleetError } from '../../errors.js';

/** RFC 5321 limits: local part 64 octets, domain 255 (we take DNS's 253). */
export const MAX_LOCAL_PART_LENGTH = 64;
export const MAX_DOMAIN_LENGTH = 253;
/** A Maildir++ folder name as one directory entry (mUTF-7 names from IMAP stay well below). */
export const MAX_FOLDER_LENGTH = 255;

export interface AddressParts {
  /** Lower-case local part. */
  readonly localPart: string;
  /** Lower-case domain. */
  readonly domain: string;
  /** `localPart@domain`, the canonical form. */
  readonly address: string;
}

// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
const UNSAFE = /[\x00-\x20\x7f/\\]/;
const DOMAIN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** Splits and checks an address; lower-cases both parts. Throws MailfleetError('BAD_REQUEST'). */
export function addressParts(address: string): AddressParts {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) throw bad(address, 'expected local-part@domain');
  const localPart = address.slice(0, at).toLowerCase();
  const domain = address.slice(at + 1).toLowerCase();
  if (localPart.length > MAX_LOCAL_PART_LENGTH) throw bad(address, `local part longer than ${MAX_LOCAL_PART_LENGTH}`);
  if (UNSAFE.test(localPart)) throw bad(address, 'local part holds a control character, space, / or \\');
  if (localPart.startsWith('.')) throw bad(address, 'local part starts with a dot');
  if (localPart.includes('@') || localPart.includes('"')) throw bad(address, 'quoted local parts are not supported');
  if (domain.length > MAX_DOMAIN_LENGTH || !DOMAIN.test(domain)) throw bad(address, 'not a valid domain name');
  return { localPart, domain, address: `${localPart}@${domain}` };
}

/** Maildir folder name check: one safe directory entry, no hierarchy tricks. */
export function checkFolder(folder: string): string {
  if (folder.length === 0 || folder.length > MAX_FOLDER_LENGTH) throw bad(folder, 'folder name empty or too long');
  if (UNSAFE.test(folder.replace(/ /g, '_'))) throw bad(folder, 'folder name holds a control character, / or \\');
  if (folder.startsWith('.') || folder.endsWith('.') || folder.includes('..')) throw bad(folder, 'folder name has an empty level');
  return folder;
}

/**
 * The Maildir directory of an address (and optionally a Maildir++ folder, e.g. 'Sent' → `.Sent`).
 * Pass folder names in their on-disk (modified UTF-7) form.
 */
export function maildirPath(root: string, address: string, folder?: string): string {
  const { localPart, domain } = addressParts(address);
  const maildir = join(root, domain, localPart, 'Maildir');
  if (folder === undefined || folder === '' || folder.toUpperCase() === 'INBOX') return maildir;
  return join(maildir, `.${checkFolder(folder)}`);
}

function bad(input: string, why: string): MailfleetError {
  return new MailfleetError('BAD_REQUEST', `unsafe mailbox address ${JSON.stringify(input.slice(0, 300))}: ${why}`, { status: 400 });
}
