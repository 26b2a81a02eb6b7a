/**
 * Every error → IMAP reply mapping, in one place. Handlers throw MailfleetError; the session calls
 * errorReply(). Response codes follow RFC 5530 (as Dovecot and Gmail use them).
 */
import { isMailfleetError, type ErrorCode } from '../../errors.js';

const CODES: Partial<Record<ErrorCode, string>> = {
  MAILBOX_NOT_FOUND: 'NONEXISTENT',
  MAILBOX_EXISTS: 'ALREADYEXISTS',
  MAILBOX_INVALID_NAME: 'CANNOT',
  MAILBOX_LOCKED: 'INUSE',
  AUTH_FAILED: 'AUTHENTICATIONFAILED',
  AUTH_DISABLED: 'AUTHENTICATIONFAILED',
  USER_UNKNOWN: 'AUTHENTICATIONFAILED',
  UNAUTHORIZED: 'PRIVACYREQUIRED',
  DIRECTORY_UNAVAILABLE: 'UNAVAILABLE',
  STORE_UNAVAILABLE: 'UNAVAILABLE',
  STORE_FULL: 'OVERQUOTA',
  MESSAGE_TOO_BIG: 'TOOBIG',
  LIMIT_EXCEEDED: 'UNAVAILABLE',
  RATE_EXCEEDED: 'LIMIT',
  NOT_FOUND: 'EXPUNGEISSUED',
};

/** Sent as tagged BAD (syntax or state), not NO. */
export const BAD_REQUEST: ErrorCode = 'BAD_REQUEST';

export function errorReply(tag: string, e: unknown): { line: string; bad: boolean; internal: boolean } {
  if (isMailfleetError(e)) {
    const explicit = e.details?.imapCode as string | undefined;
    if (e.code === BAD_REQUEST && !explicit) return { line: `${tag} BAD ${oneLine(e.message)}`, bad: true, internal: false };
    const code = explicit ?? CODES[e.code];
    if (code) return { line: `${tag} NO [${code}] ${oneLine(e.message)}`, bad: false, internal: false };
  }
  // A file-system error that escaped the store's own mapping (e.g. ESTALE/ENOENT races on a FUSE volume
  // under load) is an I/O failure, not a server bug: the client should retry. Still logged as internal.
  if (isSystemError(e)) return { line: `${tag} NO [UNAVAILABLE] Mail store temporarily unavailable, try again later`, bad: false, internal: true };
  return { line: `${tag} NO [SERVERBUG] Internal error, try again later`, bad: false, internal: true };
}

function isSystemError(e: unknown): boolean {
  const x = e as Partial<NodeJS.ErrnoException> | undefined;
  return typeof x?.code === 'string' && /^E[A-Z]+$/.test(x.code) && typeof x.syscall === 'string';
}

/** The port is full: the listener calls busy() instead of starting a session. */
export function busyText(text: string): string {
  return `* BYE [UNAVAILABLE] ${oneLine(text)}\r\n`;
}

export const REPLY = {
  greeting: (hostname: string, caps: string) => `* OK [CAPABILITY ${caps}] ${hostname} mailfleet IMAP4rev1 ready`,
  idleTimeout: '* BYE Autologout; idle for too long',
  tooManyBad: '* BYE Too many invalid commands',
  tooManyUnauth: '* BYE Too many commands before authentication',
  logout: '* BYE Logging out',
  shutdown: '* BYE [UNAVAILABLE] Server shutting down',
  literalTooBig: '* BYE [TOOBIG] Literal too big, closing connection',
  literalBudget: '* BYE [LIMIT] Server is out of memory for literals, closing connection',
} as const;

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').slice(0, 400);
}
