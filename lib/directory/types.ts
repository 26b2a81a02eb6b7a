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
  readonly quotaBytes?: number;
}

export type AuthResult =
  | { readonly ok: true; readonly user: DirectoryUser }
  | { readonly ok: false; readonly reason: 'bad-credentials' | 'disabled' | 'unknown-user' };

export interface IDirectory {
  /** Checks a login (an address, or a backend-specific login name) and password. Never cached. */
  authenticate(login: string, password: string): Promise<AuthResult>;
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
