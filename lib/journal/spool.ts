/**
 * The durable local spool of the audit journal, with the Maildir delivery's durability discipline
 * (lib/store/maildir/deliver.ts): an entry is written into tmp/ while the message is being delivered
 * (one O_DSYNC write when it fits 64 KiB, else writes + fdatasync), and committed after the delivery
 * succeeded by renaming it into ready/ and fsyncing ready/ (coalesced across concurrent commits). The
 * SMTP front-end answers 250 only after commit() resolved, so:
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
import { entryTrailer, messageIdOf, parseEntry } from './entry.js';
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

  /** Entries waiting in ready/ (names, oldest first). */
  async pending(): Promise<string[]> {
    return (await readdir(this.ready)).sort();
  }

  /** One ready/ entry as the archive shows it. */
  async read(name: string): Promise<{ entry: ArchivedEntry; message: Buffer }> {
    const parsed = parseEntry(await readFile(join(this.ready, name)));
    if (!parsed) throw new MailfleetError('STORE_UNAVAILABLE', `journal entry ${name} is damaged`, { status: 500 });
    return { entry: { ...parsed.envelope, acknowledged: !name.endsWith(UNACKED_SUFFIX) }, message: parsed.message };
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
      const ok = parseEntry(await readFile(path)) !== undefined;
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
        await this.spool.track(this.append(buf, false));
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
    // The rest is written while delivery runs; commit() waits for it.
    this.written = this.spool.track(this.finish(Buffer.concat([...pending, entryTrailer(envelope)])).then(() => size));
    this.written.catch(() => undefined);
  }

  async commit(): Promise<string> {
    if (!this.written) throw new MailfleetError('STORE_UNAVAILABLE', 'journal entry not written', { status: 503 });
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
    await this.written?.catch(() => undefined);
    if (this.fd !== undefined) await fdClose(this.fd).catch(() => undefined);
    this.fd = undefined;
    await unlink(this.path).catch(() => undefined);
  }

  private async append(buf: Buffer, last: boolean): Promise<void> {
    if (this.failed) throw this.failed;
    try {
      if (this.fd === undefined) this.fd = await fdOpen(this.path, SPOOL_FLAGS | (last && this.spool.durable ? constants.O_DSYNC : 0));
      await fdWriteAll(this.fd, buf);
    } catch (e) {
      this.failed = e;
      throw e;
    }
  }

  private async finish(buf: Buffer): Promise<void> {
    // One O_DSYNC write when nothing was written yet (most messages): as durable as write + fdatasync.
    const single = this.fd === undefined;
    await this.append(buf, true);
    const fd = this.fd!;
    this.fd = undefined;
    try {
      if (!single && this.spool.durable) await new Promise<void>((res, rej) => fdatasync(fd, (e) => (e ? rej(e) : res())));
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
