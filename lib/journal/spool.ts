/**
 * The durable local spool of the audit journal, with the Maildir delivery's durability discipline
 * (lib/store/maildir/deliver.ts). Group commit: an entry up to 64 KiB is kept in memory while the message
 * is delivered; after the delivery succeeded, commit() queues it, and the entries queued while the previous
 * group was being written go together into one tmp/ file (one O_DSYNC write), renamed into ready/, then
 * one fsync of ready/ — one data flush and one directory flush per group instead of per message. A bigger
 * entry is written into its own tmp/ file as the bytes pass (writes + fdatasync) and renamed at commit.
 * A spool file holds one or more entries back to back (entry.ts parseEntries); its name ends in `,N<count>`
 * when it holds more than one. The SMTP front-end answers 250 only after commit() resolved, so:
 *   - every 250'd message has its entry in ready/ (or already shipped to the archive);
 *   - an entry in ready/ belongs to a message durable in every mailbox;
 *   - a crash after the entry was written but before its commit leaves it in tmp/: at the next start it
 *     is moved to ready/ as `<id>,U`, shipped as `acknowledged: false` (the client never got a 250 and
 *     will retry: the retry is a new entry). A torn tmp/ file (crash mid-write) has no envelope and is
 *     removed. A message refused after DATA (delivery failed) has its entry removed at once.
 * The window between the commit and the 250 reaching the client is the one Maildir has too: the message
 * is stored and journaled, and the client that did not see the 250 sends it again.
 */
import { close, constants, fdatasync, open, write } from 'node:fs';
import { mkdir, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { MailfleetError } from '../errors.js';
import { DirectorySyncer, UniqueNames } from '../store/maildir/deliver.js';
import { entryTrailer, messageIdOf, parseEntries } from './entry.js';
import type { ArchivedEntry, IJournal, IJournalRecord, JournalEnvelope, JournalStart } from './types.js';

export interface JournalSpoolProps {
  /** The spool folder (tmp/, ready/, batches/ below it). */
  readonly dir: string;
  /**
   * Node name written into every envelope.
   * @default - os.hostname()
   */
  readonly node?: string;
  /**
   * fsync entries and ready/ before commit() resolves. Only benchmarks of the non-durable ceiling turn it off.
   * @default true
   */
  readonly fsync?: boolean;
}

/** Suffix of entries recovered from tmp/: written, never committed, so never acknowledged. */
export const UNACKED_SUFFIX = ',U';
/** Header bytes kept to find the Message-ID. */
const HEAD_BYTES = 64 * 1024;
const SPOOL_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;
/** Entries in one group file at most (the rest wait for the next group). */
const GROUP_MAX_ENTRIES = 256;
/** Bytes in one group file at most (one entry alone may be up to 64 KiB plus its envelope). */
const GROUP_MAX_BYTES = 4 * 1024 * 1024;

/** Entries a spool file holds, from its name (`…,N<count>`; one without it). */
export function entriesInName(name: string): number {
  const at = name.indexOf(',N');
  const n = at < 0 ? 1 : Number.parseInt(name.slice(at + 2), 10);
  return Number.isInteger(n) && n > 0 ? n : 1;
}

interface Queued {
  readonly buf: Buffer;
  readonly size: number;
  readonly resolve: (name: string) => void;
  readonly reject: (e: unknown) => void;
}

export class JournalSpool implements IJournal {
  readonly tmp: string;
  readonly ready: string;
  /** Batch manifests of the uploader (uploader.ts). */
  readonly batches: string;
  readonly node: string;
  readonly durable: boolean;
  private readonly names: UniqueNames;
  private readonly dirSync = new DirectorySyncer();
  private readonly inFlight = new Set<Promise<unknown>>();
  private queue: Queued[] = [];
  private writing = false;
  /** Told after each commit (the uploader wakes when a batch is full). */
  onCommit?: (name: string, bytes: number) => void;

  private constructor(readonly props: JournalSpoolProps) {
    this.tmp = join(props.dir, 'tmp');
    this.ready = join(props.dir, 'ready');
    this.batches = join(props.dir, 'batches');
    this.node = props.node ?? hostname();
    this.durable = props.fsync ?? true;
    this.names = new UniqueNames(this.node);
  }

  /** Opens the spool (creating it) and recovers what a crash left in tmp/. */
  static async open(props: JournalSpoolProps): Promise<JournalSpool> {
    const s = new JournalSpool(props);
    await Promise.all([s.tmp, s.ready, s.batches].map((d) => mkdir(d, { recursive: true })));
    if (s.durable) for (const d of [props.dir, s.tmp, s.ready, s.batches]) await s.dirSync.sync(d);
    await s.recover();
    return s;
  }

  /**
   * The spool for reading only (`mailfleet archive` beside a running daemon): nothing is created, and tmp/
   * (entries being written right now) is left alone.
   */
  static reader(dir: string): JournalSpool {
    return new JournalSpool({ dir, fsync: false });
  }

  begin(start: JournalStart): IJournalRecord {
    return new SpoolRecord(this, this.names.next(), start);
  }

  /** Spool files waiting in ready/ (names, oldest first; each holds entriesInName(name) entries). */
  async pending(): Promise<string[]> {
    return (await readdir(this.ready)).sort();
  }

  /** The entries of one ready/ file as the archive shows them, in order. */
  async read(name: string): Promise<{ entry: ArchivedEntry; message: Buffer }[]> {
    const parsed = parseEntries(await readFile(join(this.ready, name)));
    if (!parsed) throw new MailfleetError('STORE_UNAVAILABLE', `journal entry ${name} is damaged`, { status: 500 });
    const acknowledged = !name.endsWith(UNACKED_SUFFIX);
    return parsed.map((p) => ({ entry: { ...p.envelope, acknowledged }, message: p.message }));
  }

  /**
   * @internal Group commit of an entry kept in memory: resolves with its ready/ file's name once that
   * file is durable in ready/.
   */
  commitGroup(buf: Buffer, size: number): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      this.queue.push({ buf, size, resolve, reject });
      this.nextGroup();
    });
  }

  private nextGroup(): void {
    if (this.writing || this.queue.length === 0) return;
    this.writing = true;
    // Commits of this tick join the group; while it is being written the next one fills.
    setImmediate(() => {
      let bytes = 0;
      let n = 0;
      while (n < this.queue.length && n < GROUP_MAX_ENTRIES && (n === 0 || bytes + this.queue[n]!.buf.length <= GROUP_MAX_BYTES)) bytes += this.queue[n++]!.buf.length;
      const group = this.queue.splice(0, n);
      void this.writeGroup(group, bytes).finally(() => {
        this.writing = false;
        this.nextGroup();
      });
    });
  }

  private async writeGroup(group: Queued[], bytes: number): Promise<void> {
    const name = group.length > 1 ? `${this.names.next()},N${group.length}` : this.names.next();
    const tmpPath = join(this.tmp, name);
    const readyPath = join(this.ready, name);
    let renamed = false;
    try {
      const fd = await fdOpen(tmpPath, SPOOL_FLAGS | (this.durable ? constants.O_DSYNC : 0));
      try {
        await fdWriteAll(fd, Buffer.concat(group.map((q) => q.buf), bytes));
      } finally {
        await fdClose(fd);
      }
      await rename(tmpPath, readyPath);
      renamed = true;
      await this.syncReady();
    } catch (e) {
      // No 250 follows for any of them: no committed entry may stay behind.
      await unlink(renamed ? readyPath : tmpPath).catch(() => undefined);
      const err = journalError(e);
      for (const q of group) q.reject(err);
      return;
    }
    for (const q of group) {
      this.onCommit?.(name, q.size);
      q.resolve(name);
    }
  }

  async remove(names: readonly string[]): Promise<void> {
    await Promise.all(names.map((n) => unlink(join(this.ready, n)).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : Promise.reject(e)))));
    if (this.durable) await this.dirSync.sync(this.ready);
  }

  /** Waits for entries being written (a stopping daemon lets deliveries finish first). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }

  /** @internal */
  track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p)).catch(() => undefined);
    return p;
  }

  /** @internal */
  syncBatches(): Promise<void> {
    return this.durable ? this.dirSync.sync(this.batches) : Promise.resolve();
  }

  /** @internal */
  syncReady(): Promise<void> {
    return this.durable ? this.dirSync.sync(this.ready) : Promise.resolve();
  }

  private async recover(): Promise<void> {
    let moved = 0;
    for (const name of await readdir(this.tmp)) {
      const path = join(this.tmp, name);
      const ok = parseEntries(await readFile(path)) !== undefined;
      if (ok) {
        await rename(path, join(this.ready, `${name}${UNACKED_SUFFIX}`));
        moved++;
      } else await unlink(path);
    }
    if (moved > 0 && this.durable) await this.dirSync.sync(this.ready);
  }
}

class SpoolRecord implements IJournalRecord {
  private readonly path: string;
  private written?: Promise<number>;
  /** The whole entry, when it fits in memory (then it is written at commit, with its group). */
  private entry?: Buffer;
  private fd?: number;
  private failed?: unknown;

  constructor(
    private readonly spool: JournalSpool,
    private readonly id: string,
    private readonly start: JournalStart,
  ) {
    this.path = join(spool.tmp, id);
  }

  async *tee(chunks: AsyncIterable<Buffer> | Iterable<Buffer>): AsyncGenerator<Buffer> {
    const hash = createHash('sha256');
    const head: Buffer[] = [];
    let headBytes = 0;
    let size = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    for await (const chunk of chunks) {
      hash.update(chunk);
      size += chunk.length;
      if (headBytes < HEAD_BYTES) {
        head.push(chunk);
        headBytes += chunk.length;
      }
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= HEAD_BYTES) {
        // A big message: write as it comes (bounded memory); delivery waits for the journal here.
        const buf = Buffer.concat(pending, pendingBytes);
        pending = [];
        pendingBytes = 0;
        await this.spool.track(this.append(buf));
      }
      yield chunk;
    }
    const envelope: JournalEnvelope = {
      v: 1,
      id: this.id,
      time: new Date().toISOString(),
      node: this.spool.node,
      ...this.start,
      messageId: messageIdOf(Buffer.concat(head, headBytes)),
      size,
      sha256: hash.digest('hex'),
    };
    const rest = Buffer.concat([...pending, entryTrailer(envelope)]);
    if (this.fd === undefined) {
      // Nothing written yet (most messages): the entry waits in memory for its group commit.
      this.entry = rest;
      this.written = Promise.resolve(size);
      return;
    }
    // A big entry: the rest is written while delivery runs; commit() waits for it.
    this.written = this.spool.track(this.finish(rest).then(() => size));
    this.written.catch(() => undefined);
  }

  async commit(): Promise<string> {
    if (!this.written) throw new MailfleetError('STORE_UNAVAILABLE', 'journal entry not written', { status: 503 });
    if (this.entry) {
      const entry = this.entry;
      this.entry = undefined;
      return this.spool.track(this.spool.commitGroup(entry, await this.written));
    }
    const name = this.id;
    await this.spool.track(
      (async () => {
        let renamed = false;
        try {
          const size = await this.written!;
          await rename(this.path, join(this.spool.ready, name));
          renamed = true;
          await this.spool.syncReady();
          this.spool.onCommit?.(name, size);
        } catch (e) {
          // No 250 follows: no committed entry may stay behind.
          await unlink(renamed ? join(this.spool.ready, name) : this.path).catch(() => undefined);
          throw journalError(e);
        }
      })(),
    );
    return name;
  }

  async abort(): Promise<void> {
    this.entry = undefined;
    await this.written?.catch(() => undefined);
    if (this.fd !== undefined) await fdClose(this.fd).catch(() => undefined);
    this.fd = undefined;
    await unlink(this.path).catch(() => undefined);
  }

  private async append(buf: Buffer): Promise<void> {
    if (this.failed) throw this.failed;
    try {
      this.fd ??= await fdOpen(this.path, SPOOL_FLAGS);
      await fdWriteAll(this.fd, buf);
    } catch (e) {
      this.failed = e;
      throw e;
    }
  }

  private async finish(buf: Buffer): Promise<void> {
    await this.append(buf);
    const fd = this.fd!;
    this.fd = undefined;
    try {
      if (this.spool.durable) await new Promise<void>((res, rej) => fdatasync(fd, (e) => (e ? rej(e) : res())));
    } finally {
      await fdClose(fd);
    }
  }
}

/** A spool failure as the store's typed error, so SMTP answers 451/452 and the client retries. */
function journalError(e: unknown): MailfleetError {
  if (e instanceof MailfleetError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new MailfleetError('STORE_FULL', `audit journal spool full (${code})`, { status: 507, cause: e });
  return new MailfleetError('STORE_UNAVAILABLE', `audit journal unavailable (${code ?? (e as Error).message})`, { status: 503, cause: e });
}

function fdOpen(path: string, flags: number): Promise<number> {
  return new Promise((res, rej) => open(path, flags, 0o600, (e, fd) => (e ? rej(e) : res(fd))));
}

function fdClose(fd: number): Promise<void> {
  return new Promise((res, rej) => close(fd, (e) => (e ? rej(e) : res())));
}

async function fdWriteAll(fd: number, buf: Buffer): Promise<void> {
  for (let off = 0; off < buf.length; ) {
    off += await new Promise<number>((res, rej) => write(fd, buf, off, buf.length - off, null, (e, n) => (e ? rej(e) : res(n))));
  }
}
