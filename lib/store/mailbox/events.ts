/**
 * Mailbox change events: "something changed in <address>'s folder <name>". Delivery publishes after
 * each message lands; sessions waiting in IDLE refresh at once instead of at the next poll.
 *
 * The in-process emitter covers sessions on the node that delivered. With Redis in the spec,
 * RedisMailboxEvents (redis-events.ts) wraps it and carries events across nodes over pub/sub; without
 * Redis, or while it is down, other nodes see the change at their next poll (imap.pollIntervalSeconds).
 */
import { EventEmitter } from 'node:events';

export interface IMailboxEvents {
  publish(address: string, folder?: string): void;
  /** Returns the unsubscribe function. */
  subscribe(address: string, folder: string | undefined, listener: () => void): () => void;
}

export function mailboxKey(address: string, folder?: string): string {
  return `${address.toLowerCase()}\u0000${folder === undefined || folder.toUpperCase() === 'INBOX' ? 'INBOX' : folder}`;
}

export class LocalMailboxEvents implements IMailboxEvents {
  private readonly emitter = new EventEmitter();

  constructor() {
    // Thousands of IDLE sessions may watch one mailbox; they share one listener per Mailbox (registry.ts).
    this.emitter.setMaxListeners(0);
  }

  publish(address: string, folder?: string): void {
    this.emitter.emit(mailboxKey(address, folder));
  }

  subscribe(address: string, folder: string | undefined, listener: () => void): () => void {
    const key = mailboxKey(address, folder);
    this.emitter.on(key, listener);
    return () => this.emitter.off(key, listener);
  }
}
