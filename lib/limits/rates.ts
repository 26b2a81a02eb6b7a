/**
 * SMTP rate control: token buckets per client IP, per sender and per domain (messages per minute) and
 * per sender (recipients per hour), plus the recipients-per-message cap. A bucket holds `limit` tokens
 * and refills at limit/window continuously, so a sender may burst up to the limit and then goes at the
 * rate. Buckets are taken all or nothing: a refused message costs no token anywhere. A live raise of a
 * rate adds the difference to the bucket at once (the operator wants relief now); a cut clamps it.
 *
 * Backends: in-process (one node), or Redis (one Lua script, fleet-wide) when the spec names Redis,
 * falling back to in-process buckets while Redis does not answer.
 *
 * Over a rate the SMTP code answers 450 4.7.1 at MAIL/RCPT (the sender retries later, as with Postfix's
 * anvil limits); over recipientsPerMessage it answers 452 4.5.3 (RFC 5321: send the rest in a new transaction).
 */
import type { Redis } from 'ioredis';
import type { RateName } from './scope.js';

/** Window of each bucket rate, in seconds. recipientsPerMessage is a plain cap, not a bucket. */
export const RATE_WINDOW_SECONDS: Readonly<Record<Exclude<RateName, 'recipientsPerMessage'>, number>> =
  Object.freeze({
    messagesPerMinutePerIp: 60,
    messagesPerMinutePerSender: 60,
    messagesPerMinutePerDomain: 60,
    recipientsPerHourPerSender: 3600,
    loginsPerMinutePerUser: 60,
  });
export type BucketRate = keyof typeof RATE_WINDOW_SECONDS;

/**
 * How much a rate's bucket holds, in seconds of its refill, where that is less than the whole window.
 * A login rate is what the governor lowers to take CPU away from one user *now*: with a minute's worth of
 * tokens in the bucket a lowered rate would change nothing for a minute (the first governor bench with it
 * saw a user lowered to 341 logins a minute go on at 12 a second for the rest of the flood).
 */
export const RATE_BURST_SECONDS: Readonly<Partial<Record<BucketRate, number>>> = Object.freeze({ loginsPerMinutePerUser: 5 });

/**
 * A rate's bucket: what it holds (at least one token) and how long a full bucket takes to refill. The refill
 * is always the rate itself (limit per window).
 */
export function bucketOf(rate: BucketRate, limit: number): { readonly capacity: number; readonly refillMs: number } {
  const window = RATE_WINDOW_SECONDS[rate];
  const capacity = Math.max(1, (limit * (RATE_BURST_SECONDS[rate] ?? window)) / window);
  // Whole milliseconds: Redis' PEXPIRE takes the same number (a bucket untouched that long is full).
  return { capacity, refillMs: Math.max(1, Math.round((capacity * window * 1000) / limit)) };
}

export interface RateCheck {
  readonly rate: BucketRate;
  /** The IP, sender address or domain the bucket belongs to. */
  readonly id: string;
  /** Tokens to take. @default 1 */
  readonly cost?: number;
}

export interface RateRefusal {
  readonly ok: false;
  readonly rate: RateName;
  readonly id: string;
  readonly limit: number;
  /** When a token will be there again. */
  readonly retryAfterSeconds: number;
  /** Reply text naming the rate and its value. */
  readonly text: string;
}

export type RateResult = { readonly ok: true } | RateRefusal;

/** The limit of a rate for a bucket (domain rates and live overrides resolved by the caller). */
export type RateLookup = (check: RateCheck) => number;

export interface IRateLimiter {
  /** Takes tokens from every bucket, or from none and reports the first one that is short. */
  take(checks: readonly RateCheck[]): Promise<RateResult>;
}

export function rateText(rate: RateName, id: string, limit: number): string {
  if (rate === 'recipientsPerMessage') return `too many recipients: recipientsPerMessage limit of ${limit}`;
  const per = rate === 'recipientsPerHourPerSender' ? 'recipients per hour' : rate === 'loginsPerMinutePerUser' ? 'logins per minute' : 'messages per minute';
  return `rate limit exceeded: ${rate} limit of ${limit} ${per} reached for ${id}, try again later`;
}

function refusal(check: RateCheck, limit: number, tokens: number): RateRefusal {
  const window = RATE_WINDOW_SECONDS[check.rate];
  const need = Math.min(check.cost ?? 1, bucketOf(check.rate, limit).capacity) - tokens;
  const retryAfterSeconds = Math.max(1, Math.ceil((need * window) / limit));
  return {
    ok: false,
    rate: check.rate,
    id: check.id,
    limit,
    retryAfterSeconds,
    text: rateText(check.rate, check.id, limit),
  };
}

/** Sweep interval for full (forgotten) buckets of the in-process limiter. */
const SWEEP_MS = 60_000;

export class LocalRateLimiter implements IRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number; capacity: number }>();
  private readonly sweep: NodeJS.Timeout;

  constructor(
    private readonly limitOf: RateLookup,
    private readonly now: () => number = Date.now,
  ) {
    this.sweep = setInterval(() => this.forgetFull(), SWEEP_MS);
    this.sweep.unref();
  }

  async take(checks: readonly RateCheck[]): Promise<RateResult> {
    return this.takeSync(checks);
  }

  takeSync(checks: readonly RateCheck[]): RateResult {
    const t = this.now();
    const current = checks.map((c) => {
      const limit = this.limitOf(c);
      const { capacity, refillMs } = bucketOf(c.rate, limit);
      const k = `${c.rate}:${c.id.toLowerCase()}`;
      const b = this.buckets.get(k);
      if (!b) return { c, k, limit, capacity, tokens: capacity };
      const raised = Math.max(0, capacity - b.capacity);
      const refill = ((t - b.at) * capacity) / refillMs;
      return { c, k, limit, capacity, tokens: Math.min(capacity, b.tokens + raised + refill) };
    });
    for (const x of current) if (x.tokens < (x.c.cost ?? 1)) return refusal(x.c, x.limit, x.tokens);
    for (const x of current)
      this.buckets.set(x.k, { tokens: x.tokens - (x.c.cost ?? 1), at: t, capacity: x.capacity });
    return { ok: true };
  }

  close(): void {
    clearInterval(this.sweep);
  }

  private forgetFull(): void {
    const t = this.now();
    // A bucket untouched for an hour is full again whatever its rate: dropping it changes nothing.
    for (const [k, b] of this.buckets) if (t - b.at > 3_600_000) this.buckets.delete(k);
  }
}

// KEYS: bucket hashes. ARGV: then per key: capacity, refillMs (a full bucket's refill: bucketOf), cost.
// Returns {0} or {i, tokens*1000}. (The hash field keeps its old name 'limit': it holds the capacity.)
const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tokens = {}
for i = 1, #KEYS do
  local limit = tonumber(ARGV[3 * i - 2])
  local window = tonumber(ARGV[3 * i - 1])
  local cost = tonumber(ARGV[3 * i])
  local b = redis.call('HMGET', KEYS[i], 'tokens', 'at', 'limit')
  local have = limit
  if b[1] then
    local raised = math.max(0, limit - tonumber(b[3] or limit))
    have = math.min(limit, tonumber(b[1]) + raised + (now - tonumber(b[2])) * limit / window)
  end
  if have < cost then return {i, math.floor(have * 1000)} end
  tokens[i] = have - cost
end
for i = 1, #KEYS do
  redis.call('HSET', KEYS[i], 'tokens', tostring(tokens[i]), 'at', now, 'limit', ARGV[3 * i - 2])
  redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[3 * i - 1]))
end
return {0}
`;

interface RateRedis extends Redis {
  mfTake(...args: Array<string | number>): Promise<number[]>;
}

export interface RedisRateLimiterProps {
  readonly redis: Redis;
  readonly limitOf: RateLookup;
  /** @default 'mailfleet:{rate}:' */
  readonly keyPrefix?: string;
  /** Used while Redis does not answer. */
  readonly fallback: LocalRateLimiter;
  readonly onFallback?: (e: unknown) => void;
}

export class RedisRateLimiter implements IRateLimiter {
  private readonly redis: RateRedis;
  private readonly prefix: string;

  constructor(private readonly props: RedisRateLimiterProps) {
    this.redis = props.redis as RateRedis;
    this.prefix = props.keyPrefix ?? 'mailfleet:{rate}:';
    if (typeof this.redis.mfTake !== 'function') props.redis.defineCommand('mfTake', { lua: TAKE });
  }

  async take(checks: readonly RateCheck[]): Promise<RateResult> {
    if (checks.length === 0) return { ok: true };
    if (this.redis.status !== 'ready') return this.props.fallback.takeSync(checks);
    const limits = checks.map((c) => this.props.limitOf(c));
    const keys = checks.map((c) => `${this.prefix}${c.rate}:${c.id.toLowerCase()}`);
    const argv = checks.flatMap((c, i) => {
      const b = bucketOf(c.rate, limits[i]!);
      return [b.capacity, b.refillMs, c.cost ?? 1];
    });
    try {
      const r = await this.redis.mfTake(keys.length, ...keys, ...argv);
      if (r[0] === 0) return { ok: true };
      const i = r[0]! - 1;
      return refusal(checks[i]!, limits[i]!, r[1]! / 1000);
    } catch (e) {
      this.props.onFallback?.(e);
      return this.props.fallback.takeSync(checks);
    }
  }
}
