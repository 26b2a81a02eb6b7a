/**
 * One MailStore per daemon, shared by IMAP and POP3 (one index per mailbox in the process), fed by the
 * delivery hook so IDLE sessions hear about same-node deliveries at once. With `redis` in the config the
 * events also cross nodes (RedisMailboxEvents), so startDaemon opens the store (server.ts), whatever
 * protocols the node serves: a node must publish its deliveries before any IMAP session connects to it.
 */
import type { Counter, Registry } from 'prom-client';
import type { DaemonContext, DeliveredListener } from '../context.js';
import { registryCounter } from '../metrics.js';
import { maildirPath } from '../../store/maildir/paths.js';
import { decodeMutf7 } from '../../store/mailbox/mutf7.js';
import { LocalMailboxEvents, MailStore, RedisMailboxEvents, type IMailboxEvents } from '../../store/mailbox/index.js';
import type { MimeLimits } from '../../store/mailbox/mime.js';
import { imapWorkLimits, type ImapWorkLimits } from './work-limits.js';

function mimeLimitsOf(w: ImapWorkLimits): MimeLimits {
  return { maxParts: w.maxMimeParts, maxDepth: w.maxMimeDepth, maxHeaderBytes: w.maxHeaderBytes };
}

interface OpenStore {
  readonly store: MailStore;
  readonly events: IMailboxEvents;
  readonly listener: DeliveredListener;
}

const stores = new WeakMap<DaemonContext, OpenStore>();

export function mailStoreOf(ctx: DaemonContext): MailStore {
  return openStore(ctx).store;
}

/** The mailbox events behind the daemon's store (LocalMailboxEvents, or RedisMailboxEvents with `redis`). */
export function mailEventsOf(ctx: DaemonContext): IMailboxEvents {
  return openStore(ctx).events;
}

/** Stops feeding the store and closes the Redis connections (startDaemon's stop); harmless twice. */
export async function closeMailStore(ctx: DaemonContext): Promise<void> {
  const s = stores.get(ctx);
  if (!s) return;
  stores.delete(ctx);
  ctx.deliveryListeners.delete(s.listener);
  if (s.events instanceof RedisMailboxEvents) await s.events.close();
}

function openStore(ctx: DaemonContext): OpenStore {
  let s = stores.get(ctx);
  if (s) return s;
  const counters = eventCounters(ctx.metrics.registry);
  const events: IMailboxEvents = ctx.config.redis
    ? new RedisMailboxEvents({
        url: ctx.config.redis.url,
        channel: `mailfleet:${ctx.config.platform}:mailbox`,
        logger: ctx.logger.child({ component: 'mailbox-events' }),
        onRemote: () => counters.events.inc({ origin: 'remote' }),
        onError: () => counters.errors.inc(),
      })
    : new LocalMailboxEvents();
  const store = new MailStore({
    maildirOf: (address) => maildirPath(ctx.mailRoot, address),
    events,
    pollIntervalMs: ctx.config.imap.pollIntervalSeconds * 1000,
    mimeLimits: mimeLimitsOf(imapWorkLimits(ctx.config.imap)),
    expungeHistoryUids: imapWorkLimits(ctx.config.imap).expungeHistoryUids,
    changeLogBytes: imapWorkLimits(ctx.config.imap).changeLogBytes,
    // Read as set: 0 (release after every pass) is a valid value, which imapWorkLimits() would replace.
    lockHoldMs: typeof ctx.config.imap.folderLockHoldMs === 'number' ? ctx.config.imap.folderLockHoldMs : imapWorkLimits(ctx.config.imap).folderLockHoldMs,
  });
  // Delivery names folders in their on-disk (modified UTF-7) form; events use IMAP names.
  const listener: DeliveredListener = (address, folder) => {
    counters.events.inc({ origin: 'local' });
    events.publish(address, folder === undefined ? undefined : (decodeMutf7(folder) ?? folder));
  };
  ctx.deliveryListeners.add(listener);
  s = { store, events, listener };
  stores.set(ctx, s);
  return s;
}

function eventCounters(registry: Registry): { events: Counter<'origin'>; errors: Counter } {
  return {
    events: registryCounter(
      registry,
      'mailfleetd_mailbox_events_total',
      'Mailbox change events: local = deliveries on this node, remote = received from other nodes over Redis',
      ['origin'],
    ),
    errors: registryCounter(registry, 'mailfleetd_mailbox_events_errors_total', 'Redis pub/sub errors of mailbox events (connection lost or refused, publish failed, bad message)'),
  };
}
