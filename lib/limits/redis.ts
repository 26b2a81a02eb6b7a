/**
 * Fleet-wide admission in Redis: every daemon node counts in the same sorted sets, so per-user,
 * per-domain, per-user+IP, per-IP and per-listener caps hold across the fleet.
 *
 * - One sorted set per scope; a session's lease is a member scored by its expiry (Redis TIME + lease).
 *   Acquire (one Lua script, so atomic) drops expired members from a set that looks full, then takes a
 *   slot in every scope or in none. A node that dies stops refreshing; its leases expire and the counts heal.
 * - Live sessions refresh their leases every leaseSeconds/3 (one script per batch, unref'd timer). The
 *   refresh re-adds a lease that Redis lost (restart without persistence), so counts heal that way too.
 * - Acquires and releases are queued and sent together once per turn of the event loop: one script call
 *   (releases first, so a reconnect within the cap is admitted; then each acquire, all or nothing) and one
 *   write for every connection accepted or closed in that turn. Release is never awaited. A connection
 *   costs a share of one call instead of two round trips (figures: bench/limits/redis-cost.ts).
 * - The port scope stays in-process: it caps one node's socket, not the fleet.
 * - Redis down or slow (commandTimeoutMs): admission falls back to this node's in-process counters
 *   (caps hold per node, not fleet-wide), logged once per outage and counted in fallbacks; leases taken
 *   meanwhile are written to Redis by the next refresh once it is back. Admission never fails for it.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { daemonRedisOptions } from '../redis.js';
import { LocalAdmission, MAX_COUNTERS, type LimitLookup } from './local.js';
import { refusalText, scopeLabel } from './resolve.js';
import type { AcquireOptions, IAdmission, Lease, Refusal, ScopeKey, ScopeUse } from './types.js';

export interface RedisAdmissionProps {
  /** redis:// or rediss:// URL. */
  readonly url: string;
  readonly limitOf: LimitLookup;
  /**
   * Lease TTL: how long a dead node's sessions keep counting.
   * @default 30
   */
  readonly leaseSeconds?: number;
  /**
   * Prefix of every key; the hash tag keeps all keys in one slot, so multi-key scripts also run on a cluster.
   * @default 'mailfleet:{adm}:'
   */
  readonly keyPrefix?: string;
  /**
   * A Redis call slower than this counts as Redis being down (fall back to in-process counters). Generous:
   * a busy node's event-loop lag must not pass for an outage (a dead Redis fails fast on the socket anyway).
   * @default 1000
   */
  readonly commandTimeoutMs?: number;
  /** @default - silent */
  readonly logger?: Logger;
  /** Called on every fall-back to in-process counters (metrics). */
  readonly onFallback?: () => void;
}

// One call for every acquire and release this node queued in one turn of the event loop.
// KEYS: the r sets to release a member from, then the sets of each acquire in turn.
// ARGV: ttlMs, r, the r members to release, then per acquire: its member, its number of sets n, their n limits.
// Releases go first (a reconnect within the cap is admitted), then each acquire, all or nothing over its
// sets. Returns two numbers per acquire: {0, 0} when taken, {i, count} when its i-th set is full.
// Expired members are dropped only from a set that looks full: below the cap they cannot cause a refusal,
// and the set stays bounded (cap + what expired since), so most acquires skip that command.
const ACQUIRE = `
local ttl = tonumber(ARGV[1])
local r = tonumber(ARGV[2])
for i = 1, r do redis.call('ZREM', KEYS[i], ARGV[2 + i]) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
local k = r
local a = 3 + r
while a <= #ARGV do
  local member = ARGV[a]
  local n = tonumber(ARGV[a + 1])
  local full, count = 0, 0
  for i = 1, n do
    local limit = tonumber(ARGV[a + 1 + i])
    local c = redis.call('ZCARD', KEYS[k + i])
    if c >= limit then
      redis.call('ZREMRANGEBYSCORE', KEYS[k + i], '-inf', now)
      c = redis.call('ZCARD', KEYS[k + i])
      if c >= limit then
        full, count = i, c
        break
      end
    end
  end
  if full == 0 then
    for i = 1, n do
      redis.call('ZADD', KEYS[k + i], now + ttl, member)
      redis.call('PEXPIRE', KEYS[k + i], ttl * 2)
    end
  end
  out[#out + 1] = full
  out[#out + 1] = count
  k = k + n
  a = a + 2 + n
end
return out
`;

// KEYS: scope sets; ARGV: ttlMs, then the member for each key. Re-adds lost members.
const REFRESH = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now + ttl, ARGV[i + 1])
  redis.call('PEXPIRE', KEYS[i], ttl * 2)
end
return #KEYS
`;

// KEYS: scope sets. Returns the live count of each.
const COUNT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i = 1, #KEYS do out[i] = redis.call('ZCOUNT', KEYS[i], '(' .. now, '+inf') end
return out
`;

interface MailfleetRedis extends Redis {
  mfAcquire(...args: Array<string | number>): Promise<number[]>;
  mfRefresh(...args: Array<string | number>): Promise<number>;
  mfCount(...args: Array<string | number>): Promise<number[]>;
}

interface LiveLease {
  readonly keys: readonly string[];
  readonly member: string;
}

/** Scopes refreshed in one script call. */
const REFRESH_BATCH = 500;
/** Acquires in one script call (the rest of a larger queue go in the next). */
const ACQUIRE_BATCH = 200;

interface PendingAcquire {
  readonly keys: readonly string[];
  readonly limits: readonly number[];
  readonly member: string;
  readonly done: (r: { full: number; count: number } | { error: unknown }) => void;
}

export class RedisAdmission implements IAdmission {
  readonly backend = 'redis';
  private readonly redis: MailfleetRedis;
  /** Port scopes always; every scope while Redis is unreachable. */
  private readonly local: LocalAdmission;
  private readonly leaseMs: number;
  private readonly prefix: string;
  private readonly log: Logger;
  private readonly live = new Map<string, LiveLease>();
  /** Scopes this node holds leases in or refused: what snapshot() reports. */
  private readonly known = new Map<string, { scope: ScopeKey; local: number; refused: number }>();
  private readonly nodeId = randomBytes(4).toString('hex');
  private seq = 0;
  /** Releases not yet sent: keys and members, pairwise. */
  private releaseKeys: string[] = [];
  private releaseMembers: string[] = [];
  /** Acquires not yet sent; with the releases, one script call per turn of the event loop. */
  private pending: PendingAcquire[] = [];
  private flushScheduled = false;
  private readonly timer: NodeJS.Timeout;
  private down = false;
  private everReady = false;
  private closed = false;
  private readyWait?: Promise<void>;
  /** Times admission used in-process counters because Redis did not answer. */
  fallbacks = 0;

  constructor(private readonly props: RedisAdmissionProps) {
    this.leaseMs = (props.leaseSeconds ?? 30) * 1000;
    this.prefix = props.keyPrefix ?? 'mailfleet:{adm}:';
    this.log = props.logger ?? silentLogger;
    this.local = new LocalAdmission(props.limitOf);
    this.redis = new Redis(props.url, daemonRedisOptions({ commandTimeoutMs: props.commandTimeoutMs })) as MailfleetRedis;
    this.redis.defineCommand('mfAcquire', { lua: ACQUIRE });
    this.redis.defineCommand('mfRefresh', { lua: REFRESH });
    this.redis.defineCommand('mfCount', { lua: COUNT });
    this.redis.on('ready', () => {
      this.everReady = true;
      this.markUp();
    });
    // ioredis reports every failed reconnect; one log line per outage is enough (markDown).
    this.redis.on('error', (e) => this.markDown(e));
    this.timer = setInterval(() => void this.refresh(), Math.max(200, Math.floor(this.leaseMs / 3)));
    this.timer.unref();
  }

  /** Resolves once Redis answered (or after timeoutMs): start-up waits for it so the first sessions count fleet-wide. */
  async ready(timeoutMs = 2000): Promise<boolean> {
    if (this.redis.status === 'ready') return true;
    // One listener for every waiter: a connect flood at start-up must not stack listeners on the client.
    this.readyWait ??= new Promise<void>((resolve) => this.redis.once('ready', () => resolve())).finally(
      () => (this.readyWait = undefined),
    );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
      timer.unref();
    });
    const ok = await Promise.race([this.readyWait.then(() => true), timeout]);
    clearTimeout(timer);
    return ok;
  }

  /** The connection, shared with the Redis rate limiter. */
  get client(): Redis {
    return this.redis;
  }

  get usingRedis(): boolean {
    return !this.down && this.redis.status === 'ready';
  }

  async acquire(scopes: readonly ScopeKey[], opts?: AcquireOptions): Promise<Lease | Refusal> {
    const port = scopes.filter((s) => s.kind === 'port');
    const fleet = scopes.filter((s) => s.kind !== 'port');
    let portLease: Lease | undefined;
    if (port.length > 0) {
      const r = this.local.acquireSync(port, opts);
      if (!r.ok) return this.refused(r.scope, r.limit, r.current);
      portLease = r;
    }
    if (fleet.length === 0) return portLease!;
    if (!this.everReady && this.redis.status !== 'end') await this.ready(1000);
    const keys = fleet.map((s) => this.key(s));
    const limits = fleet.map((s) => this.props.limitOf(s, opts?.user));
    const member = `${this.nodeId}:${(++this.seq).toString(36)}`;
    let fleetLease: Lease;
    if (this.usingRedis) {
      const r = await new Promise<{ full: number; count: number } | { error: unknown }>((done) => {
        this.pending.push({ keys, limits, member, done });
        this.scheduleFlush();
      });
      if ('full' in r) {
        const { full, count } = r;
        if (full > 0) {
          portLease?.release();
          const scope = fleet[full - 1]!;
          return this.refused(scope, limits[full - 1]!, count);
        }
        fleetLease = { ok: true, release: () => undefined };
      } else {
        this.markDown(r.error);
        const f = this.fallback(fleet, opts, portLease);
        if (!f.ok) return f;
        fleetLease = f;
      }
    } else {
      // Remember the outage even if no command failed yet, so 'ready' re-registers these leases at once.
      this.markDown(new Error(`redis connection ${this.redis.status}`));
      const r = this.fallback(fleet, opts, portLease);
      if (!r.ok) return r;
      fleetLease = r;
    }
    this.live.set(member, { keys, member });
    for (const s of fleet) this.note(s).local++;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.live.delete(member);
        for (const s of fleet) {
          const k = this.known.get(scopeLabel(s));
          if (k) {
            k.local--;
            if (k.local === 0 && k.refused === 0) this.known.delete(scopeLabel(s));
          }
        }
        fleetLease.release();
        portLease?.release();
        // Also for a fall-back lease: a refresh may have written it to Redis since.
        this.releaseRedis(member, keys);
      },
    };
  }

  async snapshot(): Promise<ScopeUse[]> {
    const local = this.local.snapshotSync().filter((u) => u.scope.kind === 'port');
    const entries = [...this.known.values()];
    let counts: number[] | undefined;
    if (this.usingRedis && entries.length > 0) {
      try {
        counts = [];
        for (let i = 0; i < entries.length; i += REFRESH_BATCH) {
          const keys = entries.slice(i, i + REFRESH_BATCH).map((e) => this.key(e.scope));
          counts.push(...(await this.redis.mfCount(keys.length, ...keys)));
        }
      } catch (e) {
        this.markDown(e);
        counts = undefined;
      }
    }
    const fleet = entries.map((e, i) => ({
      scope: e.scope,
      // Without Redis the fleet count is unknown: this node's own is the best answer.
      current: counts ? Number(counts[i]) : this.local.count(e.scope),
      limit: this.props.limitOf(e.scope),
      refused: e.refused,
      local: e.local,
    }));
    return [...local, ...fleet];
  }

  /** Stops the refresh timer and closes the connection (leases expire on their own). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    // Release what is still held so the fleet does not wait a lease period for our sessions.
    const held = [...this.live.values()];
    if (this.usingRedis && held.length > 0) {
      const p = this.redis.pipeline();
      for (const l of held) for (const k of l.keys) p.zrem(k, l.member);
      await p.exec().catch(() => undefined);
    }
    this.redis.disconnect();
  }

  private key(s: ScopeKey): string {
    return `${this.prefix}${s.service}:${s.kind}:${s.id.toLowerCase()}`;
  }

  private note(s: ScopeKey): { scope: ScopeKey; local: number; refused: number } {
    const l = scopeLabel(s);
    let k = this.known.get(l);
    if (!k) {
      k = { scope: s, local: 0, refused: 0 };
      this.known.set(l, k);
    }
    return k;
  }

  private refused(scope: ScopeKey, limit: number, current: number): Refusal {
    if (scope.kind !== 'port') this.note(scope).refused++;
    // As in LocalAdmission: idle scopes kept for their refusals go first when a flood grows the map.
    if (this.known.size > MAX_COUNTERS)
      for (const [k, v] of this.known) {
        if (this.known.size <= MAX_COUNTERS / 2) break;
        if (v.local === 0) this.known.delete(k);
      }
    return { ok: false, scope, limit, current, text: refusalText(scope, limit) };
  }

  private fallback(
    fleet: readonly ScopeKey[],
    opts: AcquireOptions | undefined,
    portLease: Lease | undefined,
  ): Lease | Refusal {
    this.fallbacks++;
    this.props.onFallback?.();
    const r = this.local.acquireSync(fleet, opts);
    if (!r.ok) {
      portLease?.release();
      return this.refused(r.scope, r.limit, r.current);
    }
    return r;
  }

  /** Queues the lease's removal; the close path never waits for Redis. */
  private releaseRedis(member: string, keys: readonly string[]): void {
    if (!this.usingRedis) return; // the lease expires in Redis by itself
    for (const k of keys) {
      this.releaseKeys.push(k);
      this.releaseMembers.push(member);
    }
    this.scheduleFlush();
  }

  /**
   * After the I/O callbacks of this turn of the loop (setImmediate): every accept handled in one turn shares
   * one script call and one write; a quiet node pays no more than a turn of the loop for it.
   */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    while (this.pending.length > 0 || this.releaseKeys.length > 0) {
      const batch = this.pending.splice(0, ACQUIRE_BATCH);
      const relKeys = this.releaseKeys.splice(0, REFRESH_BATCH);
      const relMembers = this.releaseMembers.splice(0, REFRESH_BATCH);
      if (!this.usingRedis) {
        // Releases are dropped (the leases expire in Redis by themselves); acquires fall back.
        const error = new Error(`redis connection ${this.redis.status}`);
        for (const p of batch) p.done({ error });
        continue;
      }
      const keys: string[] = relKeys;
      const args: Array<string | number> = [this.leaseMs, relKeys.length, ...relMembers];
      for (const p of batch) {
        keys.push(...p.keys);
        args.push(p.member, p.keys.length, ...p.limits);
      }
      this.redis.mfAcquire(keys.length, ...keys, ...args).then(
        (out) => {
          for (let i = 0; i < batch.length; i++) batch[i]!.done({ full: Number(out[2 * i]), count: Number(out[2 * i + 1]) });
        },
        (error: unknown) => {
          if (batch.length === 0) this.markDown(error);
          for (const p of batch) p.done({ error });
        },
      );
    }
  }

  private async refresh(): Promise<void> {
    if (!this.usingRedis || this.live.size === 0) return;
    const pairs: Array<[string, string]> = [];
    for (const l of this.live.values()) for (const k of l.keys) pairs.push([k, l.member]);
    try {
      for (let i = 0; i < pairs.length; i += REFRESH_BATCH) {
        const batch = pairs.slice(i, i + REFRESH_BATCH);
        await this.redis.mfRefresh(
          batch.length,
          ...batch.map((p) => p[0]),
          this.leaseMs,
          ...batch.map((p) => p[1]),
        );
      }
    } catch (e) {
      this.markDown(e);
    }
  }

  private markDown(e: unknown): void {
    if (this.closed || this.down) return;
    this.down = true;
    this.log.error({ err: e }, 'redis admission unavailable: counting per node until it is back');
    // A timeout leaves the connection 'ready' (no reconnect, no 'ready' event): probe until it answers.
    const probe = setInterval(() => {
      if (this.closed || !this.down) return clearInterval(probe);
      if (this.redis.status !== 'ready') return;
      this.redis.ping().then(
        () => {
          clearInterval(probe);
          this.markUp();
        },
        () => undefined,
      );
    }, 1000);
    probe.unref();
  }

  private markUp(): void {
    if (!this.down || this.closed) return;
    this.down = false;
    this.log.warn({ leases: this.live.size }, 'redis admission back; re-registering live leases');
    void this.refresh();
  }
}
