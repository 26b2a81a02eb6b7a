/**
 * Every error → POP3 reply mapping, in one place, with RFC 2449 / RFC 3206 response codes
 * ([AUTH], [IN-USE], [SYS/TEMP], [SYS/PERM]).
 */
import { isMailfleetError, type ErrorCode } from '../../errors.js';

const CODES: Partial<Record<ErrorCode, string>> = {
  AUTH_FAILED: 'AUTH',
  AUTH_DISABLED: 'AUTH',
  USER_UNKNOWN: 'AUTH',
  MAILBOX_LOCKED: 'IN-USE',
  LIMIT_EXCEEDED: 'IN-USE',
  DIRECTORY_UNAVAILABLE: 'SYS/TEMP',
  STORE_UNAVAILABLE: 'SYS/TEMP',
  MAILBOX_NOT_FOUND: 'SYS/PERM',
};

export function errorReply(e: unknown): { line: string; internal: boolean } {
  if (isMailfleetError(e)) {
    if (e.code === 'BAD_REQUEST' || e.code === 'NOT_FOUND') return { line: `-ERR ${oneLine(e.message)}`, internal: false };
    const code = CODES[e.code];
    if (code) return { line: `-ERR [${code}] ${oneLine(e.message)}`, internal: false };
  }
  return { line: '-ERR [SYS/TEMP] Internal error, try again later', internal: true };
}

/** The port is full: the listener calls busy() instead of starting a session. */
export function busyText(text: string): string {
  return `-ERR [SYS/TEMP] ${oneLine(text)}\r\n`;
}

export const REPLY = {
  greeting: (hostname: string) => `+OK ${hostname} mailfleet POP3 ready`,
  idleTimeout: '-ERR [SYS/TEMP] Idle timeout, closing connection',
  tooManyBad: '-ERR Too many invalid commands, closing connection',
  tooManyUnauth: '-ERR [AUTH] Too many commands before authentication, closing connection',
  lineTooLong: '-ERR Line too long',
  authFailed: '-ERR [AUTH] Authentication failed',
  locked: '-ERR [IN-USE] Mailbox is locked by another POP3 session',
  shutdown: '-ERR [SYS/TEMP] Server shutting down',
} as const;

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').slice(0, 400);
}
