/**
 * One error class for the whole project: a machine code, an optional HTTP-ish status for the admin API,
 * and a cause. Protocol front-ends map codes to wire replies in one place each
 * (lib/daemon/smtp/replies.ts, lib/daemon/imap/replies.ts, lib/daemon/pop3/replies.ts).
 */
export type ErrorCode =
  | 'SPEC_INVALID'
  | 'SPEC_YAML'
  | 'SPEC_IO'
  | 'PLAN_INVALID'
  | 'AUTH_FAILED'
  | 'AUTH_DISABLED'
  | 'USER_UNKNOWN'
  | 'DIRECTORY_UNAVAILABLE'
  | 'FILTER_UNAVAILABLE'
  | 'STORE_UNAVAILABLE'
  | 'STORE_FULL'
  | 'OVER_QUOTA'
  | 'MAILBOX_NOT_FOUND'
  | 'MAILBOX_EXISTS'
  | 'MAILBOX_INVALID_NAME'
  | 'MAILBOX_LOCKED'
  | 'MESSAGE_TOO_BIG'
  | 'LIMIT_EXCEEDED'
  | 'RATE_EXCEEDED'
  | 'PROXY_HEADER_INVALID'
  | 'IN_USE'
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'NOT_FOUND'
  | 'INTERNAL';

export class MailfleetError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details?: Record<string, unknown>;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { status?: number; cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'MailfleetError';
    this.code = code;
    this.status = opts.status ?? 500;
    this.details = opts.details;
  }
}

export function isMailfleetError(e: unknown, code?: ErrorCode): e is MailfleetError {
  return e instanceof MailfleetError && (code === undefined || e.code === code);
}
