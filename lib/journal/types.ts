/**
 * The audit journal's record of one accepted message: who sent it to whom, from where, as whom, when,
 * and a digest of the bytes. Written with the bytes into the local spool before the 250 (spool.ts),
 * shipped to the archive bucket in batches (uploader.ts), read back by `mailfleet archive` (archive.ts).
 */
export interface JournalEnvelope {
  /** Format version. */
  readonly v: 1;
  /** Unique entry id (a Maildir-style unique name: sorts by second). */
  readonly id: string;
  /** When the message was accepted (end of DATA), ISO 8601 UTC. */
  readonly time: string;
  /** The node that accepted it. */
  readonly node: string;
  readonly protocol: string;
  readonly listener?: string;
  readonly clientIp: string;
  readonly helo?: string;
  /** The authenticated user (submission), absent on MX. */
  readonly user?: string;
  /** MAIL FROM; '' for the null sender. */
  readonly sender: string;
  /** Every accepted RCPT TO: the envelope, so Bcc recipients are here although no header names them. */
  readonly recipients: readonly string[];
  /** The Message-ID header, without the angle brackets; absent when the message has none. */
  readonly messageId?: string;
  /** The SMTP session and transaction (the Received header's id). */
  readonly transaction: string;
  /** Message bytes as accepted (with our Received header). */
  readonly size: number;
  readonly sha256: string;
}

/** An envelope as the archive shows it: where it was found, and whether its 250 was given. */
export interface ArchivedEntry extends JournalEnvelope {
  /**
   * false: recovered from the spool's tmp/ after a crash between the journal write and the 250 (the client
   * was never told the message was accepted; it will have retried).
   */
  readonly acknowledged: boolean;
}

/** What the SMTP front-end knows when DATA starts. */
export type JournalStart = Omit<JournalEnvelope, 'v' | 'id' | 'node' | 'time' | 'messageId' | 'size' | 'sha256'>;

/** One message being journaled (JournalSpool.begin). */
export interface IJournalRecord {
  /** Passes the message through to delivery unchanged, writing it to the spool on the way. */
  tee(chunks: AsyncIterable<Buffer> | Iterable<Buffer>): AsyncGenerator<Buffer>;
  /** The message was delivered: make its entry durable and committed. Resolve, then the 250 may go out. */
  commit(): Promise<string>;
  /** The message was refused: drop its entry. Never throws. */
  abort(): Promise<void>;
}

export interface IJournal {
  begin(start: JournalStart): IJournalRecord;
  close(): Promise<void>;
}
