/**
 * The user store as the protocol front-ends see it. Backends: static YAML file (lib/directory/static),
 * LDAP / Active Directory (lib/directory/ldap). Chosen at start-up from the spec (lib/directory/index.ts).
 *
 * Errors: a backend that cannot answer throws MailfleetError('DIRECTORY_UNAVAILABLE') so front-ends
 * answer with a temporary failure, never "unknown user".
 */
import type { ServiceLimits } from '../spec/schema.js';

export interface DirectoryUser {
  /** Canonical primary address, lower-case: the mailbox owner and the key of per-user limits. */
  readonly address: string;
  readonly localPart: string;
  readonly domain: string;
  /** Per-user overrides of connection limits (e.g. from an LDAP attribute). */
  readonly limits?: Partial<Record<'smtp' | 'submission' | 'imap' | 'pop3', Partial<ServiceLimits>>>;
  /** Storage quota from the directory (directory.attributes.quota), bytes. */
  readonly quotaBytes?: number;
  /** Message-count quota from the directory (directory.attributes.quotaMessages). */
  readonly quotaMessages?: number;
}

export type AuthResult =
  | {
      readonly ok: true;
      readonly user: DirectoryUser;
      /** What proved it, for the log: the main password, an app password (by name), SCRAM, a bearer token. @default - the main password */
      readonly via?: string;
    }
  | { readonly ok: false; readonly reason: 'bad-credentials' | 'disabled' | 'unknown-user' };

export interface AuthenticateOptions {
  /** The service logging in (imap, pop3, submission): app passwords limited to others are refused. @default - app passwords limited to services are refused */
  readonly service?: string;
  /** false refuses the main password and accepts only app passwords (spec auth.requireAppPasswords). @default true */
  readonly mainPassword?: boolean;
}

/** A user as found by login name, without a password check (SCRAM, bearer tokens). */
export interface UserRecord {
  readonly user: DirectoryUser;
  readonly disabled: boolean;
  /** The stored SCRAM-SHA-256 secret (lib/auth/scram.ts formats). @default - none: SCRAM fails for this user */
  readonly scramSha256?: string;
}

export interface IDirectory {
  /** Checks a login (an address, or a backend-specific login name) and password (or app password). Never cached. */
  authenticate(login: string, password: string, opts?: AuthenticateOptions): Promise<AuthResult>;
  /**
   * The user a login names, for mechanisms that prove identity without a password (SCRAM, bearer tokens).
   * undefined: no such user. Absent: those mechanisms are not offered with this directory.
   */
  findUser?(login: string): Promise<UserRecord | undefined>;
  /** True when the directory holds SCRAM-SHA-256 secrets: only then is the mechanism offered. */
  supportsScram?(): boolean;
  /**
   * How many password checks should run at once on this node; the login gate queues the rest, fairly per
   * login name. Set by directories whose checks hash on libuv's thread pool, which the Maildir store
   * shares (static: scrypt). Absent: not bounded by the gate (LDAP binds wait on the network and are
   * bounded by the directory's connection pool; throttling them to the pool's size would cap logins/s).
   */
  readonly concurrentChecks?: number;
  /**
   * Resolves an envelope recipient to the mailboxes it delivers to (aliases may fan out).
   * Returns [] when the address is unknown.
   */
  resolveRecipient(address: string): Promise<DirectoryUser[]>;
  /** True when the domain is one this platform receives mail for. */
  isLocalDomain(domain: string): Promise<boolean>;
  listDomains(): Promise<string[]>;
  close(): Promise<void>;
}
