/**
 * Delivery side of the message store. The read side used by IMAP/POP3 (mailboxes, UIDs, flags)
 * lives in lib/store/mailbox-types.ts.
 *
 * Durability contract: deliver() resolves only after the message is fsynced and renamed into new/
 * and the directory is fsynced, for every mailbox; the caller sends 250 only after that.
 */
import type { Readable } from 'node:stream';

export interface DeliveryTarget {
  /** Canonical address of the mailbox owner: <root>/<domain>/<localpart>/Maildir. */
  readonly address: string;
  /** Folder inside the Maildir; undefined for INBOX. */
  readonly folder?: string;
  /**
   * Header lines (each ending in CRLF) written in front of this target's copy only: Return-Path and
   * Delivered-To. Targets with different lines get their own file instead of a link.
   * @default - none
   */
  readonly headers?: string;
}

export interface DeliveryResult {
  /** Maildir unique names (without the :2, info part), one per target, in order. */
  readonly ids: readonly string[];
  readonly size: number;
  /** Indexes of targets `admit` refused (they got nothing). @default - none */
  readonly refused?: readonly number[];
}

export interface DeliveryOptions {
  /**
   * Asked once the message is spooled and its size known, before any mailbox sees it: one answer per
   * target, true when it may take the message (quota). When it refuses every target it should throw
   * (e.g. MailfleetError('OVER_QUOTA')); the spool file is removed.
   * @default - every target admitted
   */
  readonly admit?: (size: number) => Promise<readonly boolean[]>;
  /**
   * Who this delivery is for the fair gate on durable writes (lib/store/fair-gate.ts): the session's
   * authenticated user, else its client address. Writes of one owner queue behind each other, not behind
   * another owner's.
   * @default '' (one shared owner)
   */
  readonly owner?: string;
}

export interface IMessageDelivery {
  /**
   * Writes one message to every target. The message is streamed once to a spool file, then linked or
   * copied into each Maildir. Throws MailfleetError('STORE_UNAVAILABLE' | 'STORE_FULL') on I/O failure,
   * after removing any partial files. Each mailbox's usage file (lib/store/usage.ts) takes its copy
   * before this resolves.
   */
  deliver(targets: readonly DeliveryTarget[], message: Readable | Buffer, opts?: DeliveryOptions): Promise<DeliveryResult>;
}
