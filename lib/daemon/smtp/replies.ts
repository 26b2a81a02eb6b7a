/**
 * Every SMTP refusal mailfleetd sends, in one table: reply code, enhanced status code (RFC 3463) and
 * text. MailfleetError codes map here too, so a backend failure is answered the same way everywhere
 * (a directory outage is 451 4.3.0, never "unknown user").
 */
import { isMailfleetError, type ErrorCode } from '../../errors.js';

export interface SmtpReply {
  readonly code: number;
  readonly enhanced: string;
  readonly text: string;
}

export type SmtpReplyKey =
  | 'UNKNOWN_USER'
  | 'RELAY_DENIED'
  | 'SENDER_NOT_OWNED'
  | 'BAD_ADDRESS'
  | 'MESSAGE_TOO_BIG'
  | 'LINE_TOO_LONG'
  | 'TOO_MANY_RECIPIENTS'
  | 'AUTH_REQUIRED'
  | 'AUTH_FAILED'
  | 'AUTH_TEMPORARY'
  | 'AUTH_LOCKED'
  | 'WRONG_LISTENER'
  | 'LIMIT_EXCEEDED'
  | 'RATE_EXCEEDED'
  | 'RATE_LIMITED'
  | 'DIRECTORY_UNAVAILABLE'
  | 'STORE_UNAVAILABLE'
  | 'STORE_FULL'
  | 'MAILBOX_FULL'
  | 'QUOTA_EXCEEDED'
  | 'PORT_FULL'
  | 'SHUTTING_DOWN'
  | 'PROTOCOL_SYNC'
  | 'TOO_MANY_ERRORS'
  | 'BARE_LF'
  | 'BARE_CR'
  | 'AUTH_NEEDS_TLS'
  | 'IDLE_TIMEOUT'
  | 'FILTER_REJECTED'
  | 'FILTER_DEFERRED'
  | 'INTERNAL';

export const SMTP_REPLIES: Readonly<Record<SmtpReplyKey, SmtpReply>> = Object.freeze({
  UNKNOWN_USER: { code: 550, enhanced: '5.1.1', text: 'mailbox unavailable: no such user here' },
  RELAY_DENIED: { code: 550, enhanced: '5.7.1', text: 'relaying denied: not a local domain' },
  // Authenticated mail (local or relayed) must come from an address the user owns (Postfix reject_sender_login_mismatch).
  SENDER_NOT_OWNED: { code: 553, enhanced: '5.7.1', text: 'sender address not owned by the authenticated user' },
  BAD_ADDRESS: { code: 553, enhanced: '5.1.3', text: 'mailbox name not allowed' },
  MESSAGE_TOO_BIG: { code: 552, enhanced: '5.3.4', text: 'message size exceeds fixed maximum message size' },
  LINE_TOO_LONG: { code: 500, enhanced: '5.5.2', text: 'line too long' },
  TOO_MANY_RECIPIENTS: { code: 452, enhanced: '4.5.3', text: 'too many recipients' },
  AUTH_REQUIRED: { code: 530, enhanced: '5.7.0', text: 'authentication required' },
  // AUTH on submission before STARTTLS when plaintext auth is off (AUTH is not offered there either).
  AUTH_NEEDS_TLS: { code: 538, enhanced: '5.7.0', text: 'Error: Must issue a STARTTLS command first' },
  AUTH_FAILED: { code: 535, enhanced: '5.7.8', text: 'authentication credentials invalid' },
  AUTH_TEMPORARY: { code: 454, enhanced: '4.7.0', text: 'temporary authentication failure' },
  // Brute-force lockout window (lib/limits/auth-failures.ts): temporary, so clients do not ask for a new password.
  AUTH_LOCKED: { code: 454, enhanced: '4.7.0', text: 'too many failed logins, try again later' },
  // Tenant binding (lib/daemon/tenant-binding.ts): right password, wrong port; permanent, the text names the right one.
  WRONG_LISTENER: { code: 535, enhanced: '5.7.1', text: 'this domain is not served on this port' },
  LIMIT_EXCEEDED: { code: 421, enhanced: '4.7.0', text: 'too many connections' },
  RATE_EXCEEDED: { code: 451, enhanced: '4.7.1', text: 'rate limit exceeded, try again later' },
  // At MAIL/RCPT, like Postfix's anvil rate limits (lib/limits/smtp-rates.ts).
  RATE_LIMITED: { code: 450, enhanced: '4.7.1', text: 'rate limit exceeded, try again later' },
  DIRECTORY_UNAVAILABLE: { code: 451, enhanced: '4.3.0', text: 'directory temporarily unavailable, try again later' },
  STORE_UNAVAILABLE: { code: 451, enhanced: '4.3.0', text: 'mail store temporarily unavailable, try again later' },
  STORE_FULL: { code: 452, enhanced: '4.3.1', text: 'mail store full, try again later' },
  // Quota (lib/daemon/smtp/quota.ts): at RCPT a mailbox already full (temporary, RFC 3463 4.2.2); a message
  // that would push it over (SIZE= at RCPT, or at DATA), 552 5.2.2 as Postfix/Dovecot LMTP answer.
  MAILBOX_FULL: { code: 452, enhanced: '4.2.2', text: 'mailbox full' },
  QUOTA_EXCEEDED: { code: 552, enhanced: '5.2.2', text: 'mailbox full: message exceeds the quota' },
  PORT_FULL: { code: 421, enhanced: '4.7.0', text: 'too many connections, try again later' },
  SHUTTING_DOWN: { code: 421, enhanced: '4.3.2', text: 'server shutting down, try again later' },
  // Sent by the connection wrapper in front-end.ts, which rewrites smtp-server's own texts for these two.
  PROTOCOL_SYNC: { code: 554, enhanced: '5.5.1', text: 'Error: protocol synchronization: client spoke before the greeting' },
  IDLE_TIMEOUT: { code: 421, enhanced: '4.4.2', text: 'Error: timeout exceeded, closing connection' },
  // smtp.hardErrorLimit reached; sent with the host name in front, as Postfix does: `421 4.7.0 mx.test Error: too many errors`.
  TOO_MANY_ERRORS: { code: 421, enhanced: '4.7.0', text: 'Error: too many errors' },
  // smtp.bareNewline: reject — Postfix smtpd_forbid_bare_newline = reject answers the same after the final dot.
  BARE_LF: { code: 550, enhanced: '5.5.2', text: 'Error: bare <LF> received' },
  BARE_CR: { code: 550, enhanced: '5.5.2', text: 'Error: bare <CR> received' },
  // Content filter (lib/filter): rspamd's reject or soft reject, a virus, or rspamd unavailable with onUnavailable: tempfail.
  FILTER_REJECTED: { code: 550, enhanced: '5.7.1', text: 'message refused by the content filter' },
  FILTER_DEFERRED: { code: 451, enhanced: '4.7.1', text: 'message deferred by the content filter, try again later' },
  INTERNAL: { code: 451, enhanced: '4.3.0', text: 'local error in processing' },
});

const FROM_ERROR: Partial<Record<ErrorCode, SmtpReplyKey>> = {
  USER_UNKNOWN: 'UNKNOWN_USER',
  AUTH_FAILED: 'AUTH_FAILED',
  AUTH_DISABLED: 'AUTH_FAILED',
  DIRECTORY_UNAVAILABLE: 'DIRECTORY_UNAVAILABLE',
  STORE_UNAVAILABLE: 'STORE_UNAVAILABLE',
  STORE_FULL: 'STORE_FULL',
  OVER_QUOTA: 'QUOTA_EXCEEDED',
  MESSAGE_TOO_BIG: 'MESSAGE_TOO_BIG',
  LIMIT_EXCEEDED: 'LIMIT_EXCEEDED',
  RATE_EXCEEDED: 'RATE_EXCEEDED',
  BAD_REQUEST: 'BAD_ADDRESS',
};

/** The table key for any thrown value (unknown errors are a temporary local failure). */
export function replyKeyOf(e: unknown): SmtpReplyKey {
  return (isMailfleetError(e) && FROM_ERROR[e.code]) || 'INTERNAL';
}

/** The reply line without CRLF: `550 5.1.1 text`. */
export function formatReply(key: SmtpReplyKey, text?: string): string {
  const r = SMTP_REPLIES[key];
  return `${r.code} ${r.enhanced} ${text ?? r.text}`;
}

/**
 * An Error smtp-server turns into the reply: `responseCode` is the code, the message starts with the
 * enhanced status code (our connection's send() keeps it instead of deriving one from the code).
 */
export class SmtpReplyError extends Error {
  readonly responseCode: number;
  constructor(
    readonly key: SmtpReplyKey,
    text?: string,
  ) {
    const r = SMTP_REPLIES[key];
    super(`${r.enhanced} ${text ?? r.text}`);
    this.responseCode = r.code;
  }
}

/**
 * What an SMTP callback hands smtp-server when it fails: our reply as is; a MailfleetError as its mapped
 * reply; anything else as 451 4.3.0. smtp-server answers an error without a responseCode with a
 * permanent 550 5.1.1 after RCPT, which would bounce mail over a transient fault.
 */
export function toReplyError(e: unknown): Error {
  if (e instanceof SmtpReplyError) return e;
  if (e instanceof Error && typeof (e as { responseCode?: unknown }).responseCode === 'number') return e;
  return new SmtpReplyError(replyKeyOf(e));
}
