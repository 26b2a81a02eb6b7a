/**
 * Brute-force lockout window: failed logins counted per client IP and per login name over a sliding
 * window, shared by SMTP AUTH, IMAP and POP3 of one daemon node.
 *
 * - A key is locked while it has at least `limit` failures inside the last `windowSeconds`; it opens
 *   again when the oldest of those ages out (no fixed-length ban that an attacker could extend forever
 *   by itself, and no reset an attacker could trigger).
 * - Only the last `limit` failure times are kept per key, so memory per key is bounded; at most
 *   `trackedKeys` keys are remembered, least recently failed forgotten first (a flood of spoofed-looking
 *   logins cannot grow the map without bound; forgetting only ever unlocks).
 * - A successful login clears the failures of that login name (its owner knows the password), never of
 *   the IP: an attacker with one valid account must not be able to reset its IP's count.
 * - IPv6 clients count per /64: one host usually holds a whole /64, so per-address counting would not bind.
 * - The login gate reserves a failure slot (reserve()) BEFORE the slow password check and settles it after:
 *   a check in flight counts as a failure until it answers, so parallel attempts cannot all pass the check
 *   and at most `limit` passwords are ever checked per key and window (recording only after the check let
 *   40 parallel guesses all be hashed). A right password gives its slot back.
 * - Per node, in memory: a restart forgets. Behind HAProxy the client IP is the PROXY v2 source.
 */
import { isIPv6 } from 'node:net';

export type LockoutScope = 'ip' | 'user';

export interface Lockout {
  readonly scope: LockoutScope;
  /** Whole seconds until the next attempt can be checked again (≥ 1). */
  readonly retryAfterSeconds: number;
}

/** A failure slot taken before a password is checked; settled once with the answer. */
export interface AuthReservation {
  /** The password was wrong: the slot stays, counted as a failure. */
  failed(): Promise<void>;
  /** The password was right: the IP's slot is given back and the login's failures cleared. */
  succeeded(): Promise<void>;
  /** The check could not run (directory down): both slots are given back. */
  cancel(): Promise<void>;
}

export type Reserved = { readonly ok: true; readonly reservation: AuthReservation } | { readonly ok: false; readonly lockout: Lockout };

/** The lockout window as the login gate uses it: in process (AuthFailureWindow) or fleet-wide (Redis). */
export interface IAuthFailures {
  /**
   * Atomically: the lockout in force for this IP or login name, or else one failure slot taken on both,
   * to settle after the password check.
   */
  reserve(remoteAddress: string, login: string): Promise<Reserved>;
  /** The lockout in force for this IP or login name, if any. */
  check(remoteAddress: string, login: string): Promise<Lockout | undefined>;
  /** Records a failed login; returns the lockout it started, if any. */
  recordFailure(remoteAddress: string, login: string): Promise<Lockout | undefined>;
  /** A successful login clears that login name's failures (not the IP's). */
  recordSuccess(login: string): Promise<void>;
}

export interface AuthFailureWindowProps {
  /**
   * Failures one client IP may make within the window before its logins are refused.
   * @default 30
   */
  readonly failuresPerIp?: number;
  /**
   * Failures for one login name (any IP) within the window before logins as it are refused.
   * @default 10
   */
  readonly failuresPerUser?: number;
  /**
   * Length of the sliding window.
   * @default 900
   */
  readonly windowSeconds?: number;
  /**
   * Most keys (IPs plus login names) remembered; the least recently failed are forgotten first.
   * @default 100000
   */
  readonly trackedKeys?: number;
  /** Clock in ms, for tests. @default Date.now */
  readonly now?: () => number;
}

export class AuthFailureWindow implements IAuthFailures {
  private readonly failures = new Map<string, number[]>();
  private readonly perIp: number;
  private readonly perUser: number;
  private readonly windowMs: number;
  private readonly maxKeys: number;
  private readonly now: () => number;

  constructor(props: AuthFailureWindowProps = {}) {
    this.perIp = props.failuresPerIp ?? 30;
    this.perUser = props.failuresPerUser ?? 10;
    this.windowMs = (props.windowSeconds ?? 900) * 1000;
    this.maxKeys = props.trackedKeys ?? 100_000;
    this.now = props.now ?? Date.now;
  }

  /** The lockout in force for this IP or login name, if any (the IP is checked first). */
  async check(remoteAddress: string, login: string): Promise<Lockout | undefined> {
    return this.checkSync(remoteAddress, login);
  }

  async recordFailure(remoteAddress: string, login: string): Promise<Lockout | undefined> {
    return this.recordFailureSync(remoteAddress, login);
  }

  async recordSuccess(login: string): Promise<void> {
    this.recordSuccessSync(login);
  }

  async reserve(remoteAddress: string, login: string): Promise<Reserved> {
    return this.reserveSync(remoteAddress, login);
  }

  reserveSync(remoteAddress: string, login: string): Reserved {
    const locked = this.checkSync(remoteAddress, login);
    if (locked) return { ok: false, lockout: locked };
    const t = this.now();
    const ip = ipKey(remoteAddress);
    const user = login === '' ? undefined : userKey(login);
    this.push(ip, this.perIp, t);
    if (user) this.push(user, this.perUser, t);
    let settled = false;
    const settle = (fn: () => void) => async () => {
      if (settled) return;
      settled = true;
      fn();
    };
    return {
      ok: true,
      reservation: {
        failed: settle(() => undefined),
        succeeded: settle(() => {
          this.unpush(ip, t);
          this.recordSuccessSync(login);
        }),
        cancel: settle(() => {
          this.unpush(ip, t);
          if (user) this.unpush(user, t);
        }),
      },
    };
  }

  checkSync(remoteAddress: string, login: string): Lockout | undefined {
    const t = this.now();
    return this.lockedFor('ip', ipKey(remoteAddress), this.perIp, t) ?? this.lockedFor('user', userKey(login), this.perUser, t);
  }

  recordFailureSync(remoteAddress: string, login: string): Lockout | undefined {
    const t = this.now();
    this.push(ipKey(remoteAddress), this.perIp, t);
    if (login !== '') this.push(userKey(login), this.perUser, t);
    return this.checkSync(remoteAddress, login);
  }

  recordSuccessSync(login: string): void {
    this.failures.delete(userKey(login));
  }

  /** Keys remembered now (tests, metrics). */
  get size(): number {
    return this.failures.size;
  }

  private lockedFor(scope: LockoutScope, key: string, limit: number, t: number): Lockout | undefined {
    const times = this.failures.get(key);
    if (!times || times.length < limit) return undefined;
    // times holds the last `limit` failures, oldest first: locked until the oldest leaves the window.
    const opensAt = times[0]! + this.windowMs;
    if (opensAt <= t) return undefined;
    return { scope, retryAfterSeconds: Math.max(1, Math.ceil((opensAt - t) / 1000)) };
  }

  /** Gives back one slot taken at `t` (equal times are interchangeable). */
  private unpush(key: string, t: number): void {
    const times = this.failures.get(key);
    const i = times ? times.lastIndexOf(t) : -1;
    if (i < 0) return;
    times!.splice(i, 1);
    if (times!.length === 0) this.failures.delete(key);
  }

  private push(key: string, limit: number, t: number): void {
    const times = this.failures.get(key) ?? [];
    // Re-insert so Map order is least recently failed first (the eviction order).
    this.failures.delete(key);
    times.push(t);
    while (times.length > limit) times.shift();
    this.failures.set(key, times);
    while (this.failures.size > this.maxKeys) {
      const oldest = this.failures.keys().next().value;
      if (oldest === undefined) break;
      this.failures.delete(oldest);
    }
  }
}

export function ipKey(remoteAddress: string): string {
  return `ip:${isIPv6(remoteAddress) ? ipv6Prefix64(remoteAddress) : remoteAddress}`;
}

/** '2001:db8::1' → '2001:db8:0:0::/64'. */
export function ipv6Prefix64(address: string): string {
  const [head = '', tail] = address.toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/** Login names compare case-insensitively (the directories do too). */
export function userKey(login: string): string {
  return `user:${login.trim().toLowerCase()}`;
}
