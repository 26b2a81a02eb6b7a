/**
 * Connection options every daemon Redis client shares (admission in lib/limits, mailbox events in
 * lib/store/mailbox): a Redis outage must fail calls at once, never queue or block them, and the
 * client keeps reconnecting in the background.
 */
import type { RedisOptions } from 'ioredis';

export interface DaemonRedisOptions {
  /**
   * A call slower than this fails (the caller treats it as Redis being down).
   * @default 1000
   */
  readonly commandTimeoutMs?: number;
}

export function daemonRedisOptions(opts: DaemonRedisOptions = {}): RedisOptions {
  return {
    // No queueing while disconnected: callers fall back (per-node counters, polling) instead of waiting.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: opts.commandTimeoutMs ?? 1000,
    connectTimeout: 2000,
    retryStrategy: (times) => Math.min(100 * times, 2000),
    lazyConnect: false,
  };
}
