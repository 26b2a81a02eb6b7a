/**
 * Ships the spool's ready/ entries to the archive bucket in batches; runs inside the daemon that wrote
 * them (one service per node, its backlog on the daemon's own /metrics; the work is file reads and HTTP
 * PUTs, async on the event loop, at most one batch in flight).
 *
 * A batch is two objects: `<batch>.msgs` (the messages, back to back) then `<batch>.index.json` (every
 * envelope with its offset and length in .msgs); an index names only bytes already stored. Before the
 * first PUT the batch's entry names are written to batches/<batch>.json (fsync'd): after a crash the same
 * batch is shipped again under the same keys, so an entry is in exactly one batch, and a repeated PUT only
 * adds an identical version (readers take the latest). Entries leave the spool only after both PUTs
 * succeeded. Failures are retried with exponential backoff (retryMinMs doubling to retryMaxMs), forever:
 * nothing is dropped; the backlog metrics say how far behind the node is.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../log.js';
import { DEFAULT_AUDIT } from '../spec/defaults.js';
import { batchKeys, s3Client, type S3Target } from './s3.js';
import { entriesInName, UNACKED_SUFFIX, type JournalSpool } from './spool.js';
import type { ArchivedEntry } from './types.js';

export interface JournalUploaderProps {
  readonly spool: JournalSpool;
  readonly target: S3Target;
  readonly logger: Logger;
  /** Metrics join this registry (the daemon's). @default - not exported */
  readonly registry?: Registry;
  /** @default DEFAULT_AUDIT.batchMaxEntries (1000) */
  readonly batchMaxEntries?: number;
  /** @default DEFAULT_AUDIT.batchMaxBytes (64 MiB) */
  readonly batchMaxBytes?: number;
  /** A partial batch ships after this long. @default DEFAULT_AUDIT.flushIntervalSeconds × 1000 */
  readonly flushIntervalMs?: number;
  /** First retry delay after a failed batch. @default 1000 */
  readonly retryMinMs?: number;
  /** Longest retry delay. @default 60000 */
  readonly retryMaxMs?: number;
  /**
   * The node doing the upload, when it ships a spool another node left behind (node-spools.ts): the batch
   * stays under the accepting node's name and the index records the shipper apart.
   * @default - the spool's node
   */
  readonly shippedBy?: string;
}

export interface IndexEntry extends ArchivedEntry {
  readonly offset: number;
  readonly length: number;
}

export interface BatchIndex {
  readonly v: 1;
  readonly batch: string;
  /** The node that accepted the batch's messages (its key's node segment too). */
  readonly node: string;
  /** The node that shipped the batch, when another node adopted the spool (absent otherwise). */
  readonly shippedBy?: string;
  readonly created: string;
  readonly dataKey: string;
  readonly entries: readonly IndexEntry[];
}

export class JournalUploader {
  private client?: S3Client;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;
  private failures = 0;
  private committed = 0;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly flushMs: number;
  private readonly batchesTotal?: Counter<'result'>;
  private readonly entriesShipped?: Counter;

  constructor(private readonly props: JournalUploaderProps) {
    this.maxEntries = props.batchMaxEntries ?? DEFAULT_AUDIT.batchMaxEntries;
    this.maxBytes = props.batchMaxBytes ?? DEFAULT_AUDIT.batchMaxBytes;
    this.flushMs = props.flushIntervalMs ?? DEFAULT_AUDIT.flushIntervalSeconds * 1000;
    const registers = props.registry ? [props.registry] : [];
    if (props.registry) {
      const spool = props.spool;
      new Gauge({
        name: 'mailfleetd_journal_backlog_entries',
        help: 'Audit journal entries in the local spool not yet shipped to the archive bucket',
        registers,
        async collect() {
          this.set((await readdir(spool.ready)).reduce((n, name) => n + entriesInName(name), 0));
        },
      });
      new Gauge({
        name: 'mailfleetd_journal_backlog_oldest_seconds',
        help: 'Age of the oldest audit journal entry not yet shipped (0 when none)',
        registers,
        async collect() {
          const names = (await readdir(spool.ready)).sort();
          // Entry names start with their Unix second (Maildir unique names).
          const sec = names.length > 0 ? Number(names[0]!.slice(0, names[0]!.indexOf('.'))) : NaN;
          this.set(Number.isFinite(sec) ? Math.max(0, Date.now() / 1000 - sec) : 0);
        },
      });
      this.batchesTotal = new Counter({ name: 'mailfleetd_journal_batches_total', help: 'Audit journal batch uploads, by result', labelNames: ['result'], registers });
      this.entriesShipped = new Counter({ name: 'mailfleetd_journal_entries_shipped_total', help: 'Audit journal entries shipped to the archive bucket', registers });
    }
  }

  start(): void {
    this.props.spool.onCommit = () => {
      // A full batch goes at once; a partial one waits for the timer.
      if (++this.committed >= this.maxEntries && this.failures === 0) this.kick(0);
    };
    this.kick(this.flushMs);
  }

  /** Ships everything pending now (tests, `mailfleet archive` on a stopped node). Throws on failure. */
  async flush(): Promise<void> {
    await this.running?.catch(() => undefined);
    const run = this.shipAll();
    this.running = run;
    await run;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.props.spool.onCommit = undefined;
    await this.running?.catch(() => undefined);
    this.client?.destroy();
  }

  private kick(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.running) return this.kick(this.flushMs);
      this.running = this.shipAll().then(
        () => {
          this.failures = 0;
        },
        (e: unknown) => {
          this.failures++;
          this.batchesTotal?.inc({ result: 'error' });
          this.props.logger.warn({ err: e, failures: this.failures }, 'audit journal upload failed; retrying');
        },
      );
      void this.running.finally(() => {
        this.running = undefined;
        const backoff = Math.min(this.props.retryMaxMs ?? 60_000, (this.props.retryMinMs ?? 1000) * 2 ** Math.max(0, this.failures - 1));
        this.kick(this.failures > 0 ? backoff : this.flushMs);
      });
    }, delayMs);
    this.timer.unref();
  }

  /** Pending manifests first (a crash mid-batch), then new batches until ready/ is empty. */
  private async shipAll(): Promise<void> {
    const spool = this.props.spool;
    for (const m of (await readdir(spool.batches)).filter((n) => n.endsWith('.json')).sort()) {
      const names = JSON.parse(await readFile(join(spool.batches, m), 'utf8')) as string[];
      await this.ship(m.slice(0, -5), names);
    }
    for (;;) {
      this.committed = 0;
      const names = await this.nextBatch();
      if (names.length === 0) return;
      const batch = batchId(names);
      // Durable before the first PUT: a crash after it ships this same batch again.
      await writeFile(join(spool.batches, `${batch}.json`), JSON.stringify(names), { flush: true });
      await spool.syncBatches();
      await this.ship(batch, names);
      if (this.stopped) return;
    }
  }

  /**
   * The oldest ready/ files, up to batchMaxEntries entries and batchMaxBytes (a file bigger than that ships
   * alone). A file (one group commit) is never split: its entries ship in one batch.
   */
  private async nextBatch(): Promise<string[]> {
    const names = await this.props.spool.pending();
    let bytes = 0;
    let entries = 0;
    for (let i = 0; i < names.length; i++) {
      bytes += (await stat(join(this.props.spool.ready, names[i]!))).size;
      entries += entriesInName(names[i]!);
      if ((bytes > this.maxBytes || entries > this.maxEntries) && i > 0) return names.slice(0, i);
    }
    return names;
  }

  private async ship(batch: string, names: readonly string[]): Promise<void> {
    const spool = this.props.spool;
    const parts: Buffer[] = [];
    const entries: IndexEntry[] = [];
    let offset = 0;
    const present: string[] = [];
    for (const n of names) {
      let read;
      try {
        read = await spool.read(n);
      } catch (e) {
        // Shipped and removed before a crash cut the manifest's removal short.
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      present.push(n);
      for (const r of read) {
        parts.push(r.message);
        entries.push({ ...r.entry, offset, length: r.message.length });
        offset += r.message.length;
      }
    }
    if (present.length > 0) {
      const first = entries[0]!;
      // The accepting node, from the entries themselves: an adopted spool is shipped by another node, and
      // the archive must still say which node took those messages. (A spool of the layout before per-node
      // folders may mix nodes: then the spool's own name.)
      const node = entries.every((e) => e.node === first.node) ? first.node : spool.node;
      const shipper = this.props.shippedBy ?? spool.node;
      const keys = batchKeys(this.props.target.prefix ?? '', new Date(first.time), node, batch);
      const index: BatchIndex = { v: 1, batch, node, ...(shipper !== node ? { shippedBy: shipper } : {}), created: new Date().toISOString(), dataKey: keys.data, entries };
      this.client ??= await s3Client(this.props.target);
      const { PutObjectCommand } = await import('@aws-sdk/client-s3');
      const data = Buffer.concat(parts, offset);
      await this.client.send(new PutObjectCommand({ Bucket: this.props.target.bucket, Key: keys.data, Body: data, ContentType: 'application/octet-stream' }));
      await this.client.send(new PutObjectCommand({ Bucket: this.props.target.bucket, Key: keys.index, Body: JSON.stringify(index), ContentType: 'application/json' }));
      this.batchesTotal?.inc({ result: 'ok' });
      this.entriesShipped?.inc(entries.length);
      await spool.remove(present);
    }
    await unlink(join(spool.batches, `${batch}.json`)).catch(() => undefined);
  }
}

/** A batch id that depends only on its entries: `<first entry's second>-<digest of the names>`. */
function batchId(names: readonly string[]): string {
  const first = names[0]!;
  const sec = first.slice(0, first.indexOf('.'));
  return `${sec}-${createHash('sha256').update(names.join('\n')).digest('hex').slice(0, 20)}`;
}

export { UNACKED_SUFFIX };
