/**
 * The brute-force lockout window fleet-wide: with `redis` in the spec every node counts failed logins in
 * the same Redis sorted sets, so an attacker spread over N nodes gets failuresPerIp guesses, not N times
 * that. Same semantics as AuthFailureWindow (auth-failures.ts): per IP (IPv6 per /64) and per login name,
 * sliding window, the last `limit` failures kept per key, a success clears the login name only.
 *
 * - One Lua script per call, keys under one hash tag (`mailfleet:{auth}:`) so it also runs on a cluster;
 *   Redis TIME is the clock, so nodes with skewed clocks agree. Keys expire with the window.
 * - Redis down or slow: the in-process window answers instead (per node, as without Redis), counted in
 *   onFallback; failures recorded meanwhile stay local. A login never fails because of Redis.
 */
import type { Redis } from 'ioredis';
import { AuthFailureWindow, ipKey, userKey, type IAuthFailures, type Lockout } from './auth-failures.js';

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

interface AuthRedis extends Redis {
  mfAuthWindow(...args: Array<string | number>): Promise<number[]>;
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

export class RedisAuthFailures implements IAuthFailures {
  private readonly redis: AuthRedis;
  private readonly prefix: string;

  constructor(private readonly props: RedisAuthFailuresProps) {
    this.redis = props.redis as AuthRedis;
    this.prefix = props.keyPrefix ?? 'mailfleet:{auth}:';
    if (typeof this.redis.mfAuthWindow !== 'function') props.redis.defineCommand('mfAuthWindow', { lua: WINDOW });
  }

  check(remoteAddress: string, login: string): Promise<Lockout | undefined> {
    return this.run(remoteAddress, login, '', () => this.props.fallback.checkSync(remoteAddress, login));
  }

  recordFailure(remoteAddress: string, login: string): Promise<Lockout | undefined> {
    const member = `${process.pid}:${Date.now()}:${++members}:${Math.random().toString(36).slice(2, 8)}`;
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
      const keys = login === '' ? [this.key(ipKey(remoteAddress))] : [this.key(ipKey(remoteAddress)), this.key(userKey(login))];
      const r = await this.redis.mfAuthWindow(keys.length, ...keys, windowSeconds * 1000, failuresPerIp, failuresPerUser, member);
      if (r[0] === 0) return undefined;
      return { scope: r[0] === 1 ? 'ip' : 'user', retryAfterSeconds: Math.max(1, Math.ceil(r[1]! / 1000)) };
    } catch (e) {
      this.props.onFallback?.(e);
      return local();
    }
  }

  private key(k: string): string {
    return `${this.prefix}${k}`;
  }
}
