/**
 * The brute-force lockout window fleet-wide: with `redis` in the spec every node counts failed logins in
 * the same Redis sorted sets, so an attacker spread over N nodes gets failuresPerIp guesses, not N times
 * that. Same semantics as AuthFailureWindow (auth-failures.ts): per IP (IPv6 per /64) and per login name,
 * sliding window, the last `limit` failures kept per key, a success clears the login name only.
 *
 * - One Lua script per call, keys under one hash tag (`mailfleet:{auth}:`) so it also runs on a cluster;
 *   Redis TIME is the clock, so nodes with skewed clocks agree. Keys expire with the window.
 * - reserve() checks every key and, only if none is locked, adds one member to each, in one script: the
 *   slot is taken before the password check on every node at once, so N nodes together check at most
 *   `limit` passwords per key and window. Settling removes the member (success, outage) or leaves it.
 * - Redis down or slow: the in-process window answers instead (per node, as without Redis), counted in
 *   onFallback; failures recorded meanwhile stay local. A login never fails because of Redis.
 */
import type { Redis } from 'ioredis';
import { AuthFailureWindow, ipKey, userKey, type IAuthFailures, type Lockout, type Reserved } from './auth-failures.js';

// KEYS: ip key[, user key]. ARGV: windowMs, limit ip, limit user, member ('' = only check).
// Returns {0} or {scope (1 ip, 2 user), ms until the oldest counted failure leaves the window}.
const WINDOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local member = ARGV[4]
for i = 1, #KEYS do
  local limit = tonumber(ARGV[1 + i])
  if member ~= '' then
    redis.call('ZADD', KEYS[i], now, member)
    redis.call('ZREMRANGEBYRANK', KEYS[i], 0, -(limit + 1))
    redis.call('PEXPIRE', KEYS[i], window)
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  if redis.call('ZCARD', KEYS[i]) >= limit then
    local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    return {i, tonumber(oldest[2]) + window - now}
  end
end
return {0}
`;

// KEYS: ip key[, user key]. ARGV: windowMs, limit ip, limit user, member.
// Returns {0} when the member was added to every key, else the first locked key as WINDOW does (nothing added).
const RESERVE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
for i = 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  if redis.call('ZCARD', KEYS[i]) >= tonumber(ARGV[1 + i]) then
    local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    return {i, tonumber(oldest[2]) + window - now}
  end
end
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[i], window)
end
return {0}
`;

interface AuthRedis extends Redis {
  mfAuthWindow(...args: Array<string | number>): Promise<number[]>;
  mfAuthReserve(...args: Array<string | number>): Promise<number[]>;
}

export interface RedisAuthFailuresProps {
  /** A connected client (the admission's: one connection per node). */
  readonly redis: Redis;
  readonly failuresPerIp: number;
  readonly failuresPerUser: number;
  readonly windowSeconds: number;
  /** Answers while Redis does not. */
  readonly fallback: AuthFailureWindow;
  /** @default 'mailfleet:{auth}:' */
  readonly keyPrefix?: string;
  readonly onFallback?: (e: unknown) => void;
}

let members = 0;

/** A member unique across nodes: two failures in the same millisecond must both count. */
function newMember(): string {
  return `${process.pid}:${Date.now()}:${++members}:${Math.random().toString(36).slice(2, 8)}`;
}

function toLockout(r: number[]): Lockout {
  return { scope: r[0] === 1 ? 'ip' : 'user', retryAfterSeconds: Math.max(1, Math.ceil(r[1]! / 1000)) };
}

export class RedisAuthFailures implements IAuthFailures {
  private readonly redis: AuthRedis;
  private readonly prefix: string;

  constructor(private readonly props: RedisAuthFailuresProps) {
    this.redis = props.redis as AuthRedis;
    this.prefix = props.keyPrefix ?? 'mailfleet:{auth}:';
    if (typeof this.redis.mfAuthWindow !== 'function') props.redis.defineCommand('mfAuthWindow', { lua: WINDOW });
    if (typeof this.redis.mfAuthReserve !== 'function') props.redis.defineCommand('mfAuthReserve', { lua: RESERVE });
  }

  async reserve(remoteAddress: string, login: string): Promise<Reserved> {
    const local = () => this.props.fallback.reserveSync(remoteAddress, login);
    if (this.redis.status !== 'ready') return local();
    const member = newMember();
    const keys = this.keys(remoteAddress, login);
    let r: number[];
    try {
      r = await this.redis.mfAuthReserve(keys.length, ...keys, this.props.windowSeconds * 1000, this.props.failuresPerIp, this.props.failuresPerUser, member);
    } catch (e) {
      this.props.onFallback?.(e);
      return local();
    }
    if (r[0] !== 0) return { ok: false, lockout: toLockout(r) };
    const [ip, user] = keys as [string, string | undefined];
    let settled = false;
    // Settling never fails a login: a member Redis did not take back stays as a failure until it expires.
    const settle = (fn: () => Promise<unknown>) => async () => {
      if (settled) return;
      settled = true;
      await fn().catch((e: unknown) => this.props.onFallback?.(e));
    };
    return {
      ok: true,
      reservation: {
        failed: settle(async () => undefined),
        succeeded: settle(async () => {
          this.props.fallback.recordSuccessSync(login);
          await this.redis.multi().zrem(ip, member).del(this.key(userKey(login))).exec();
        }),
        cancel: settle(async () => {
          const m = this.redis.multi().zrem(ip, member);
          if (user) m.zrem(user, member);
          await m.exec();
        }),
      },
    };
  }

  check(remoteAddress: string, login: string): Promise<Lockout | undefined> {
    return this.run(remoteAddress, login, '', () => this.props.fallback.checkSync(remoteAddress, login));
  }

  recordFailure(remoteAddress: string, login: string): Promise<Lockout | undefined> {
    const member = newMember();
    return this.run(remoteAddress, login, member, () => this.props.fallback.recordFailureSync(remoteAddress, login));
  }

  async recordSuccess(login: string): Promise<void> {
    this.props.fallback.recordSuccessSync(login);
    if (this.redis.status !== 'ready') return;
    await this.redis.del(this.key(userKey(login))).catch((e: unknown) => this.props.onFallback?.(e));
  }

  private async run(remoteAddress: string, login: string, member: string, local: () => Lockout | undefined): Promise<Lockout | undefined> {
    if (this.redis.status !== 'ready') return local();
    const { failuresPerIp, failuresPerUser, windowSeconds } = this.props;
    try {
      const keys = this.keys(remoteAddress, login);
      const r = await this.redis.mfAuthWindow(keys.length, ...keys, windowSeconds * 1000, failuresPerIp, failuresPerUser, member);
      return r[0] === 0 ? undefined : toLockout(r);
    } catch (e) {
      this.props.onFallback?.(e);
      return local();
    }
  }

  private keys(remoteAddress: string, login: string): string[] {
    return login === '' ? [this.key(ipKey(remoteAddress))] : [this.key(ipKey(remoteAddress)), this.key(userKey(login))];
  }

  private key(k: string): string {
    return `${this.prefix}${k}`;
  }
}
