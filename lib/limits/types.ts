/**
 * Admission control: the daemon asks before a session starts (connect: ip, listener, port) and again at
 * authentication (user, user+ip, domain). A granted lease is released when the session ends.
 * Backends: in-process counters (one node) or Redis (fleet-wide, leases with TTL).
 */
import type { Service } from '../spec/schema.js';

/** A scope key: what is counted. */
export type ScopeKind = 'port' | 'listener' | 'ip' | 'user' | 'userip' | 'domain';

export interface ScopeKey {
  readonly kind: ScopeKind;
  readonly service: Service;
  /** e.g. the IP, the user address, 'user@x|1.2.3.4', the domain, the listener name, the port number. */
  readonly id: string;
}

export interface Refusal {
  readonly ok: false;
  readonly scope: ScopeKey;
  readonly limit: number;
  readonly current: number;
  /** Human text for the protocol reply, naming the limit and its value. */
  readonly text: string;
}

export interface Lease {
  readonly ok: true;
  /** Releases every counter taken by this admission. Idempotent. */
  release(): void;
}

export interface IAdmission {
  /**
   * Takes one slot in every scope, all or nothing: if any scope is full nothing is taken and the
   * first full scope is reported.
   */
  acquire(scopes: readonly ScopeKey[]): Promise<Lease | Refusal>;
  /** Current counts, for /v1/connections, `mailfleet top` and metrics. */
  snapshot(): Promise<Array<{ scope: ScopeKey; current: number; limit: number; refused: number }>>;
}
