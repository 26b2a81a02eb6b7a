/**
 * Mailbox events across nodes through Redis pub/sub: a delivery on node A wakes IDLE sessions on node B
 * at once instead of at B's next poll.
 *
 * - publish() emits in-process at once, then PUBLISHes `{"a":address,"f":folder,"o":originId}` on one
 *   channel, fire-and-forget: a delivery never waits for Redis.
 * - A second connection (a subscribed connection can issue nothing else) SUBSCRIBEs to the channel and
 *   emits in-process what other origins published; our own messages are dropped (already emitted).
 * - Redis down: the remote part is skipped, logged once per outage; polling (imap.pollIntervalSeconds)
 *   still finds the change. When the subscription is back, every watched mailbox is poked once, so
 *   changes published during the outage show up without waiting for the poll.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from '../../log.js';
import { silentLogger } from '../../log.js';
import { daemonRedisOptions } from '../../redis.js';
import { LocalMailboxEvents, mailboxKey, type IMailboxEvents } from './events.js';

export interface RedisMailboxEventsProps {
  /** redis:// or rediss:// URL (the spec's `redis.url`). */
  readonly url: string;
  /**
   * Pub/sub channel every node publishes and listens on.
   * @default 'mailfleet:mailbox'
   */
  readonly channel?: string;
  /**
   * A PUBLISH slower than this counts as Redis being down (the event still went out in-process).
   * @default 1000
   */
  readonly commandTimeoutMs?: number;
  /** @default - silent */
  readonly logger?: Logger;
  /**
   * Called on every Redis error: connection lost or refused (once per reconnect attempt), PUBLISH or
   * SUBSCRIBE failed, unreadable message (metrics).
   * @default - nothing
   */
  readonly onError?: (err: unknown) => void;
  /**
   * Called for every event received from another node (metrics).
   * @default - nothing
   */
  readonly onRemote?: () => void;
}

/** What travels on the channel; short keys because every delivery sends one. */
interface WireEvent {
  readonly a: string;
  readonly f?: string;
  readonly o: string;
}

type Link = 'publisher' | 'subscriber';

export class RedisMailboxEvents implements IMailboxEvents {
  readonly channel: string;
  /** Tells this instance's own messages apart from other nodes' (per instance: tests run two daemons in one process). */
  readonly originId = randomBytes(8).toString('hex');
  private readonly local = new LocalMailboxEvents();
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly log: Logger;
  /** Mailboxes with at least one local subscriber: poked after an outage. */
  private readonly watched = new Map<string, { address: string; folder?: string; n: number }>();
  private readonly down = new Set<Link>();
  private subscribed = false;
  private everSubscribed = false;
  private closed = false;

  constructor(private readonly props: RedisMailboxEventsProps) {
    this.channel = props.channel ?? 'mailfleet:mailbox';
    this.log = props.logger ?? silentLogger;
    const options = daemonRedisOptions({ commandTimeoutMs: props.commandTimeoutMs });
    this.pub = new Redis(props.url, { ...options, connectionName: 'mailfleet-events-pub' });
    // We subscribe on every 'ready' ourselves: the first SUBSCRIBE cannot wait in an offline queue
    // (there is none, by design), and one code path then serves start-up and every reconnect.
    this.sub = new Redis(props.url, { ...options, connectionName: 'mailfleet-events-sub', autoResubscribe: false });
    this.pub.on('error', (e) => this.markDown('publisher', e));
    this.sub.on('error', (e) => this.markDown('subscriber', e));
    this.pub.on('ready', () => this.markUp('publisher'));
    this.sub.on('ready', () => this.resubscribe());
    // A dropped connection may say nothing on 'error' until the first reconnect fails.
    this.pub.on('close', () => this.markDown('publisher', new Error('redis connection closed')));
    this.sub.on('close', () => {
      this.subscribed = false;
      this.markDown('subscriber', new Error('redis connection closed'));
    });
    this.sub.on('message', (channel: string, text: string) => this.receive(channel, text));
  }

  /** True while both connections work: events reach other nodes and theirs reach us. */
  get usingRedis(): boolean {
    return !this.closed && this.subscribed && this.pub.status === 'ready' && this.down.size === 0;
  }

  publish(address: string, folder?: string): void {
    this.local.publish(address, folder);
    if (this.closed || this.pub.status !== 'ready') return; // polling covers it; the outage is logged once
    const msg: WireEvent = folder === undefined ? { a: address, o: this.originId } : { a: address, f: folder, o: this.originId };
    this.pub.publish(this.channel, JSON.stringify(msg)).then(
      () => this.markUp('publisher'),
      (e: unknown) => this.markDown('publisher', e),
    );
  }

  subscribe(address: string, folder: string | undefined, listener: () => void): () => void {
    const key = mailboxKey(address, folder);
    const w = this.watched.get(key);
    if (w) w.n++;
    else this.watched.set(key, { address, folder, n: 1 });
    const off = this.local.subscribe(address, folder, listener);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      off();
      const e = this.watched.get(key);
      if (e && --e.n === 0) this.watched.delete(key);
    };
  }

  /** Closes both connections; publish() keeps emitting in-process. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.subscribed = false;
    await Promise.all([quit(this.pub), quit(this.sub)]);
  }

  private resubscribe(): void {
    if (this.closed) return;
    this.sub.subscribe(this.channel).then(
      () => {
        this.subscribed = true;
        this.markUp('subscriber');
        if (this.everSubscribed) this.pokeWatched();
        this.everSubscribed = true;
      },
      (e: unknown) => this.markDown('subscriber', e),
    );
  }

  private receive(channel: string, text: string): void {
    if (channel !== this.channel || this.closed) return;
    let m: Partial<WireEvent>;
    try {
      m = JSON.parse(text) as Partial<WireEvent>;
    } catch (e) {
      this.props.onError?.(e);
      return;
    }
    if (typeof m.a !== 'string' || typeof m.o !== 'string' || (m.f !== undefined && typeof m.f !== 'string')) {
      this.props.onError?.(new Error('unreadable mailbox event'));
      return;
    }
    if (m.o === this.originId) return;
    this.props.onRemote?.();
    this.local.publish(m.a, m.f);
  }

  /** Events published while we were unsubscribed are lost; one refresh per watched mailbox finds them. */
  private pokeWatched(): void {
    for (const w of [...this.watched.values()]) this.local.publish(w.address, w.folder);
  }

  private markDown(link: Link, e: unknown): void {
    if (this.closed) return;
    this.props.onError?.(e);
    if (this.down.has(link)) return;
    const wasUp = this.down.size === 0;
    this.down.add(link);
    if (wasUp) this.log.error({ err: e, link }, 'redis mailbox events unavailable: other nodes see changes at their next poll');
  }

  private markUp(link: Link): void {
    if (this.closed || !this.down.delete(link)) return;
    if (this.down.size === 0) this.log.warn('redis mailbox events back');
  }
}

async function quit(r: Redis): Promise<void> {
  if (r.status === 'end') return;
  // QUIT needs a working connection; otherwise drop it (and stop reconnecting).
  if (r.status !== 'ready') return r.disconnect();
  await r.quit().catch(() => r.disconnect());
}
