/**
 * Admission control: the daemon asks before a session starts (connect: ip, listener, port) and again at
 * authentication (user, user+ip, domain). A granted lease is released when the session ends.
 * Backends: in-process counters (one node) or Redis (fleet-wide, leases with TTL).
 */
import type { Service, ServiceLimits } from '../spec/schema.js';

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

/** Optional context of an admission (additive: callers without it get plan and live limits). */
export interface AcquireOptions {
  /** The authenticated user's own limits from the directory (DirectoryUser.limits), most specific after a live user override. */
  readonly user?: { readonly limits?: Partial<Record<Service, Partial<ServiceLimits>>> };
}

/** One counted scope as snapshot() reports it. */
export interface ScopeUse {
  scope: ScopeKey;
  /** Fleet-wide with Redis (every node's leases), else this node's. */
  current: number;
  limit: number;
  /** Refusals on this node since start. */
  refused: number;
  /** This node's own sessions in the scope (equals current without Redis). */
  local?: number;
}

export interface IAdmission {
  /**
   * Takes one slot in every scope, all or nothing: if any scope is full nothing is taken and the
   * first full scope is reported.
   */
  acquire(scopes: readonly ScopeKey[], opts?: AcquireOptions): Promise<Lease | Refusal>;
  /** Current counts, for /v1/connections, `mailfleet top` and metrics. */
  snapshot(): Promise<ScopeUse[]>;
}
