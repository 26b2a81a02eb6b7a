/**
 * The one login-and-admission gate of SMTP AUTH, IMAP LOGIN/AUTHENTICATE and POP3 USER/PASS/AUTH. In order:
 *   1. per-IP concurrent checks (auth.concurrentChecksPerIp): over it, refused before any work;
 *   2. lockout (lib/limits/auth-failures.ts): a failure slot is reserved before the password is checked,
 *      so parallel guesses cannot all pass a window that has one slot left; a locked IP or login is
 *      refused without asking the directory;
 *   3. the directory checks the password; a failure keeps its slot and is answered after the delay;
 *   4. tenant binding (tenant-binding.ts): the user's domain must belong on the listener used;
 *   5. admission: the user, user+IP and domain leases, with the user's own limits from the directory.
 * Except for a password this node verified for the same login and service within verifiedTtlSeconds: then
 * admission (5) goes first, before any password work, and a full cap is refused at once. A flooding client
 * that retries against its cap then costs a map lookup and an HMAC, not a password hash each time (scrypt
 * runs on libuv's thread pool, shared with every file operation of every tenant). The memory of verified
 * passwords only ever refuses, it never admits: an admitted attempt still goes through 1–4, and a wrong or
 * unknown password never reaches the early refusal, so the reply says nothing about the user to anyone who
 * does not know the password (docs/governor.md).
 * And the password checks themselves take turns where the directory asks for it (IDirectory.concurrentChecks;
 * the static directory does): at most that many run at once on this node, queued
 * per login name and served round-robin. scrypt runs on libuv's thread pool (4 threads), where every file
 * operation of the Maildir store waits too; unbounded, one user's flood of logins fills the pool and
 * everybody's deliveries and logins queue behind it. Bounded and fair, a light user's login waits for at
 * most one check per active login name, and the pool keeps threads for the store.
 * And a user's logins per minute (rates.loginsPerMinutePerUser, per user: what the governor lowers when CPU
 * is the pressure, docs/governor.md): a token per login with the right password, taken before the hash
 * when the password is one this node verified (so a refused login costs no hash), else after a successful
 * check. Wrong passwords never use a user's tokens (they would let anyone lock a user out).
 * It returns the lease or a refusal; each protocol only maps the outcome to its reply (docs/limits.md):
 *   busy, rate, locked,         SMTP 454 4.7.0, IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP]
 *   unavailable
 *   failed                      SMTP 535 5.7.8, IMAP NO [AUTHENTICATIONFAILED], POP3 -ERR [AUTH]
 *   wrong-listener              SMTP 535 5.7.1, IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/PERM], naming the port
 *   refused (a cap)             SMTP 421 4.7.0, IMAP NO [UNAVAILABLE], POP3 -ERR [IN-USE]
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Counter } from 'prom-client';
import type { AuthResult, DirectoryUser, IDirectory } from '../directory/types.js';
import { AuthFailureWindow, ipKey, type IAuthFailures, type Lockout, type LockoutScope } from '../limits/auth-failures.js';
import type { RateResult } from '../limits/rates.js';
import type { IAdmission, Lease, Refusal } from '../limits/types.js';
import type { Service } from '../spec/schema.js';
import type { ListenerHint, TenantBinding } from './tenant-binding.js';

export type LoginOutcome =
  /** Authenticated and admitted: the session owns the lease and releases it when it ends. */
  | { readonly kind: 'ok'; readonly user: DirectoryUser; readonly lease: Lease }
  /** Wrong password, unknown or disabled user: answered after the failure delay. */
  | { readonly kind: 'failed'; readonly reason: Extract<AuthResult, { ok: false }>['reason'] }
  /** Too many recent failures for this IP or login: refused without checking the password. */
  | { readonly kind: 'locked'; readonly lockout: Lockout }
  /** This IP has auth.concurrentChecksPerIp checks in flight already: refused without checking. */
  | { readonly kind: 'busy'; readonly text: string }
  /** Right password (or one verified before), but the user is over its loginsPerMinutePerUser. */
  | { readonly kind: 'rate'; readonly user: DirectoryUser; readonly text: string; readonly retryAfterSeconds: number }
  /** The directory could not answer. */
  | { readonly kind: 'unavailable'; readonly error: unknown }
  /** Right password, wrong listener for the user's tenant. */
  | { readonly kind: 'wrong-listener'; readonly user: DirectoryUser; readonly hint: ListenerHint }
  /** Right password, but a user, user+IP or domain cap is full. */
  | { readonly kind: 'refused'; readonly user: DirectoryUser; readonly refusal: Refusal };

export interface LoginAttempt {
  /** The admission service (submission for both SMTP submission ports). */
  readonly service: Service;
  readonly login: string;
  readonly password: string;
  /**
   * The credential check of a mechanism without a password (SCRAM proof, bearer token, lib/auth/sasl.ts),
   * run in the password's place: inside the lockout reservation, so its failures count the same.
   * @default - the directory checks `password`
   */
  readonly verify?: () => Promise<AuthResult>;
  readonly remoteAddress: string;
  /** The planned listener the connection arrived on (AcceptedConnection.listener). @default - not bound to a tenant */
  readonly listener?: string;
  /** The service's pause before a failure is answered (slows guessing inside one connection). */
  readonly failureDelayMs: number;
}

export interface ILoginGate {
  login(a: LoginAttempt): Promise<LoginOutcome>;
  /** Per user address: logins checked and refused by the login rate since start (the governor's sample). @default - not reported */
  activity?(): LoginActivityRow[];
}

/** One user's logins on this node since start (counters; an entry idle for LOGIN_ACTIVITY_IDLE_MS is dropped). */
export interface LoginActivityRow {
  readonly user: string;
  /** Password checks that passed (each cost one hash, where the directory hashes). */
  readonly checked: number;
  /** Logins refused by the user's loginsPerMinutePerUser (before or after the check). */
  readonly rateRefused: number;
}

/** The login rate as the gate sees it (from the live limits: rates.loginsPerMinutePerUser and its overrides). */
export interface LoginRate {
  /** The user's limit per minute now; 0: none. */
  limit(user: string): number;
  /** Takes one token of the user's bucket. */
  take(user: string): Promise<RateResult>;
}

/** A user whose counters have not moved for this long is forgotten (the governor reads a drop as a restart). */
const LOGIN_ACTIVITY_IDLE_MS = 10 * 60_000;
/** At most this many users' counters are kept (the oldest dropped first). */
const LOGIN_ACTIVITY_MAX = 10_000;

class LoginActivity {
  private readonly rows = new Map<string, { checked: number; rateRefused: number; at: number }>();

  count(user: string, field: 'checked' | 'rateRefused'): void {
    const k = user.toLowerCase();
    const r = this.rows.get(k) ?? { checked: 0, rateRefused: 0, at: 0 };
    r[field]++;
    r.at = Date.now();
    this.rows.delete(k);
    this.rows.set(k, r);
    if (this.rows.size > LOGIN_ACTIVITY_MAX) this.rows.delete(this.rows.keys().next().value!);
  }

  list(): LoginActivityRow[] {
    const idle = Date.now() - LOGIN_ACTIVITY_IDLE_MS;
    const out: LoginActivityRow[] = [];
    for (const [user, r] of this.rows) {
      if (r.at < idle) this.rows.delete(user);
      else out.push({ user, checked: r.checked, rateRefused: r.rateRefused });
    }
    return out;
  }
}

export interface LoginGateProps {
  readonly directory: Pick<IDirectory, 'authenticate' | 'concurrentChecks'>;
  /**
   * Refuse the main password and accept only app passwords (and SCRAM or tokens) (spec auth.requireAppPasswords).
   * @default false
   */
  readonly requireAppPasswords?: boolean;
  /** Takes the user, user+IP and domain leases. */
  readonly admission: IAdmission;
  /** In process, or fleet-wide through Redis (lib/limits/auth-failures-redis.ts). @default - a window with its documented defaults */
  readonly failures?: IAuthFailures;
  /** @default - no tenant binding (every listener admits every domain) */
  readonly tenants?: TenantBinding;
  /**
   * Password checks one client IP (IPv6: /64) may have in flight at once on this node (spec auth.concurrentChecksPerIp).
   * @default 4
   */
  readonly concurrentChecksPerIp?: number;
  /** Failed logins by service (wrong password; not lockouts or outages). */
  readonly failuresTotal?: Counter<'service'>;
  /** Logins refused because of a lockout, by service and scope. */
  readonly lockoutsTotal?: Counter<'service' | 'scope'>;
  /**
   * Password checks in flight at once on this node (a login waits its turn, round-robin per login name).
   * @default - the directory's own bound (IDirectory.concurrentChecks: half of libuv's thread pool for the
   * static directory, which hashes there); unbounded for a directory that sets none (LDAP)
   */
  readonly concurrentChecks?: number;
  /**
   * Of those, how many one login name may hold at once (spec auth.concurrentChecksPerUser): its further
   * logins wait their turn while other users' checks go ahead. Only where the checks are bounded.
   * @default 1
   */
  readonly concurrentChecksPerUser?: number;
  /**
   * How long a verified password lets a later attempt with the same login, service and password take its
   * leases before the password check (so a full cap is refused without hashing). 0 turns it off.
   * @default 600
   */
  readonly verifiedTtlSeconds?: number;
  /**
   * Verified passwords remembered at most (oldest dropped first).
   * @default 10000
   */
  readonly verifiedMaxEntries?: number;
  /** @default - no login rate */
  readonly loginRate?: LoginRate;
}

/**
 * Slots for password checks, handed out round-robin over keys (login names) when all are taken, and at most
 * `perKey` to one key at once: a user whose own checks fill every slot would make everyone else's login
 * wait for a hash to finish and then share the cores with the next one (the governor bench: a capped user
 * re-authenticating 20 times a second held the daemon at 1.7 of 2 cores in password hashing).
 */
export class FairSlots {
  private inUse = 0;
  private readonly byKey = new Map<string, number>();
  /** Waiters per key, in round-robin order (Map insertion order: a served key goes to the back). */
  private readonly queues = new Map<string, Array<() => void>>();

  constructor(
    private readonly max: number,
    private readonly perKey: number = Number.POSITIVE_INFINITY,
  ) {}

  /** Resolves with the release of a slot once it is this key's turn. */
  async take(key: string): Promise<() => void> {
    if (this.inUse < this.max && (this.byKey.get(key) ?? 0) < this.perKey && !this.queues.has(key)) this.grant(key);
    else
      await new Promise<void>((r) => {
        const q = this.queues.get(key);
        if (q) q.push(r);
        else this.queues.set(key, [r]);
      });
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inUse--;
      const n = (this.byKey.get(key) ?? 1) - 1;
      if (n > 0) this.byKey.set(key, n);
      else this.byKey.delete(key);
      this.handOver();
    };
  }

  /** Checks running now (tests). */
  get running(): number {
    return this.inUse;
  }

  private grant(key: string): void {
    this.inUse++;
    this.byKey.set(key, (this.byKey.get(key) ?? 0) + 1);
  }

  /** Free slots go to waiting keys in round-robin order, skipping a key that holds its perKey already. */
  private handOver(): void {
    while (this.inUse < this.max) {
      let served = false;
      for (const [key, q] of this.queues) {
        if ((this.byKey.get(key) ?? 0) >= this.perKey) continue;
        const wake = q.shift()!;
        this.queues.delete(key);
        if (q.length > 0) this.queues.set(key, q);
        this.grant(key);
        wake();
        served = true;
        break;
      }
      if (!served) return;
    }
  }
}

/**
 * Per login and service: an HMAC (random per-process key) of the password that last passed the check, and
 * the user it named. Only the early admission reads it (see the file comment); the directory is asked for
 * every login that is admitted.
 */
class VerifiedPasswords {
  private readonly key = randomBytes(32);
  private readonly entries = new Map<string, { mac: Buffer; user: DirectoryUser; until: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly max: number,
  ) {}

  private mac(password: string): Buffer {
    return createHmac('sha256', this.key).update(password).digest();
  }

  /** The user a matching, unexpired entry names. */
  match(id: string, password: string): DirectoryUser | undefined {
    const e = this.entries.get(id);
    if (!e) return undefined;
    if (e.until < Date.now()) {
      this.entries.delete(id);
      return undefined;
    }
    return timingSafeEqual(e.mac, this.mac(password)) ? e.user : undefined;
  }

  remember(id: string, password: string, user: DirectoryUser): void {
    if (this.ttlMs <= 0) return;
    this.entries.delete(id);
    this.entries.set(id, { mac: this.mac(password), user, until: Date.now() + this.ttlMs });
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
  }

  forget(id: string): void {
    this.entries.delete(id);
  }
}

export class LoginGate implements ILoginGate {
  private readonly failures: IAuthFailures;
  private readonly maxInFlight: number;
  /** Checks in flight per IP key; an entry exists only while non-zero. */
  private readonly inFlight = new Map<string, number>();
  /** Per login name (lower case): checks in flight on this node, and who waits for the next one to settle. */
  private readonly checking = new Map<string, { count: number; waiters: Array<() => void> }>();

  /** Counts one check in flight for `login`; the returned function ends it and wakes every waiter (they ask again). */
  private startChecking(login: string): () => void {
    const entry = this.checking.get(login) ?? { count: 0, waiters: [] };
    this.checking.set(login, entry);
    entry.count++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      if (--entry.count === 0) this.checking.delete(login);
      for (const wake of entry.waiters.splice(0)) wake();
    };
  }

  /** Resolves when one of this node's checks in flight for `login` settles. */
  private nextSettled(login: string): Promise<void> {
    return new Promise((r) => this.checking.get(login)!.waiters.push(r));
  }

  private readonly verified: VerifiedPasswords;
  private readonly slots: FairSlots;
  private readonly logins = new LoginActivity();

  constructor(private readonly props: LoginGateProps) {
    this.failures = props.failures ?? new AuthFailureWindow();
    this.maxInFlight = props.concurrentChecksPerIp ?? 4;
    // Unbounded (a directory that hashes elsewhere, LDAP): no slots to share, so no per-user bound either.
    const bound = props.concurrentChecks ?? props.directory.concurrentChecks;
    this.slots = new FairSlots(bound ?? Number.POSITIVE_INFINITY, bound === undefined ? Number.POSITIVE_INFINITY : (props.concurrentChecksPerUser ?? 1));
    this.verified = new VerifiedPasswords((props.verifiedTtlSeconds ?? 600) * 1000, props.verifiedMaxEntries ?? 10_000);
  }

  async login(a: LoginAttempt): Promise<LoginOutcome> {
    // A password without its own verifier (not SCRAM or a token) that passed here before: admission first.
    const id = `${a.service}\0${a.login.toLowerCase()}`;
    const known = a.verify ? undefined : this.verified.match(id, a.password);
    let early: Lease | undefined;
    let rated = false;
    if (known && !this.props.tenants?.check(a.listener, known.domain)) {
      // The login rate first: a refused login then takes no lease either.
      const over = await this.overRate(known);
      if (over) return over;
      rated = true;
      const r = await this.admit(a, known);
      if (!r.ok) return { kind: 'refused', user: known, refusal: r };
      early = r;
    }
    let checked: Awaited<ReturnType<LoginGate['check']>>;
    try {
      checked = await this.check(a);
    } catch (e) {
      early?.release();
      throw e;
    }
    if (!a.verify) {
      if (checked.kind === 'authenticated') this.verified.remember(id, a.password, checked.user);
      else if (checked.kind === 'failed') this.verified.forget(id);
    }
    if (checked.kind !== 'authenticated') {
      early?.release();
      return checked;
    }
    const user = checked.user;
    this.logins.count(user.address, 'checked');
    // The early leases count the user the memory named; the directory may name another one now.
    if (early && user.address === known!.address) return { kind: 'ok', user, lease: early };
    early?.release();
    const hint = this.props.tenants?.check(a.listener, user.domain);
    if (hint) return { kind: 'wrong-listener', user, hint };
    if (!rated || user.address !== known!.address) {
      const over = await this.overRate(user);
      if (over) return over;
    }
    const r = await this.admit(a, user);
    return r.ok ? { kind: 'ok', user, lease: r } : { kind: 'refused', user, refusal: r };
  }

  /** Users' logins on this node (the governor's sample reads it through the admin API). */
  activity(): LoginActivityRow[] {
    return this.logins.list();
  }

  /** The user's login rate: undefined when under it (a token taken) or when it has none. */
  private async overRate(user: DirectoryUser): Promise<Extract<LoginOutcome, { kind: 'rate' }> | undefined> {
    const rate = this.props.loginRate;
    if (!rate || rate.limit(user.address) <= 0) return undefined;
    const r = await rate.take(user.address);
    if (r.ok) return undefined;
    this.logins.count(user.address, 'rateRefused');
    return { kind: 'rate', user, text: r.text, retryAfterSeconds: r.retryAfterSeconds };
  }

  private admit(a: LoginAttempt, user: DirectoryUser): Promise<Lease | Refusal> {
    return this.props.admission.acquire(
      [
        { kind: 'user', service: a.service, id: user.address },
        { kind: 'userip', service: a.service, id: `${user.address}|${a.remoteAddress}` },
        { kind: 'domain', service: a.service, id: user.domain },
      ],
      { user }, // with the user's own limits from the directory (lib/limits AcquireOptions)
    );
  }

  /** Concurrency cap, lockout reservation, password check. */
  private async check(a: LoginAttempt): Promise<LoginOutcome | { kind: 'authenticated'; user: DirectoryUser }> {
    const ip = ipKey(a.remoteAddress);
    const n = this.inFlight.get(ip) ?? 0;
    if (n >= this.maxInFlight) return { kind: 'busy', text: `Too many logins in progress from your address (at most ${this.maxInFlight}), try again` };
    this.inFlight.set(ip, n + 1);
    let result: AuthResult;
    let settle: () => Promise<void>;
    const login = a.login.toLowerCase();
    try {
      // A window full only of this login's checks still in flight is no lockout yet: most of them are right
      // passwords (a client reconnecting many sessions at once) and give their slot back. Wait for them to
      // settle, then ask again; a real lockout (failures) or a wait past the bound is answered as such.
      const deadline = Date.now() + PENDING_WAIT_MS;
      let reserved = await this.failures.reserve(a.remoteAddress, a.login);
      // Only this node's checks are known here: with Redis, a window filled by checks in flight on other
      // nodes still answers as a lockout (docs/faults.md).
      while (!reserved.ok && reserved.lockout.scope === 'user' && this.checking.has(login) && Date.now() < deadline) {
        await this.nextSettled(login);
        reserved = await this.failures.reserve(a.remoteAddress, a.login);
      }
      if (!reserved.ok) {
        this.props.lockoutsTotal?.inc({ service: a.service, scope: reserved.lockout.scope });
        return { kind: 'locked', lockout: reserved.lockout };
      }
      const slot = reserved.reservation;
      const done = this.startChecking(login);
      const turn = await this.slots.take(login);
      try {
        result = a.verify
          ? await a.verify()
          : await this.props.directory.authenticate(a.login, a.password, { service: a.service, mainPassword: !this.props.requireAppPasswords });
      } catch (error) {
        turn();
        await slot.cancel();
        done();
        return { kind: 'unavailable', error };
      }
      turn();
      settle = async () => {
        await (result.ok ? slot.succeeded : slot.failed)();
        done();
      };
    } finally {
      const left = (this.inFlight.get(ip) ?? 1) - 1;
      if (left > 0) this.inFlight.set(ip, left);
      else this.inFlight.delete(ip);
    }
    await settle();
    if (result.ok) return { kind: 'authenticated', user: result.user };
    this.props.failuresTotal?.inc({ service: a.service });
    if (a.failureDelayMs > 0) await new Promise((r) => setTimeout(r, a.failureDelayMs).unref());
    return { kind: 'failed', reason: result.reason };
  }
}

/** How long a login waits for its own checks in flight to settle before a full window counts as a lockout. */
const PENDING_WAIT_MS = 2_000;

/** The text every protocol puts after its temporary-failure code. */
export function lockoutText(l: Lockout): string {
  const who: Record<LockoutScope, string> = { ip: 'from your address', user: 'for this account' };
  return `Too many failed logins ${who[l.scope]}, try again in ${l.retryAfterSeconds} seconds`;
}
