/**
 * Durable Maildir delivery (IMessageDelivery). For one message to N mailboxes:
 *   1. stream it once into <first>/tmp/<name> (counting the size), fsync, close;
 *   2. hard-link that file into <other>/new/<name>,S=<size> for every other mailbox (copy + fsync +
 *      rename across filesystems) — a link is atomic, so new/ never shows a partial file; a mailbox
 *      whose own header lines differ (Delivered-To) gets a copy with its lines instead of a link;
 *   3. rename the spool file into <first>/new/;
 *   4. fsync every new/ directory, so the names survive a crash;
 * and only then resolve: the caller answers 250 after that. A crash at any point leaves at most a
 * file in tmp/ (invisible to readers) and never a partial message in new/.
 *
 * Directory fsyncs are coalesced per directory (group commit): callers that renamed into a directory
 * while an fsync of it was running share the next one, so concurrent deliveries to one mailbox do not
 * each pay for their own.
 *
 * Cost per message matters (one SMTP connection per message is common): every fs call is a round trip
 * through the libuv pool, so the spool file is written with the callback API on a plain fd (no FileHandle
 * objects), and opened only once the first 64 KiB are in hand: a message that fits (most do) goes out in
 * one write on an O_DSYNC file, which is as durable as write + fdatasync and saves that round trip.
 * A burst of directory fsyncs keeps the directory open between them (see DirectorySyncer).
 */
import { close, constants, createReadStream, fdatasync, fsync, open, write } from 'node:fs';
import { link, mkdir, rename, unlink } from 'node:fs/promises';
import { randomFillSync } from 'node:crypto';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { isMailfleetError, MailfleetError } from '../../errors.js';
import type { DeliveryOptions, DeliveryResult, DeliveryTarget, IMessageDelivery } from '../types.js';
import { addUsage } from '../usage.js';
import { maildirPath } from './paths.js';
import type { FairGate } from '../fair-gate.js';

export interface MaildirDeliveryProps {
  /** Root of every Maildir: <root>/<domain>/<localpart>/Maildir. */
  readonly root: string;
  /** Told after a message is durable in a mailbox (IMAP IDLE wake-ups). Must not throw. */
  readonly onDelivered?: (address: string, folder: string | undefined, name: string) => void;
  /**
   * Host part of unique names.
   * @default - os.hostname() with '/' and ':' escaped
   */
  readonly hostname?: string;
  /**
   * fsync files and directories before resolving. Only benchmarks of the non-durable ceiling turn it off.
   * @default true
   */
  readonly fsync?: boolean;
  /**
   * The fair gate every durable write of a delivery passes (the file's durable write or fdatasync, the
   * fsync of new/), keyed by the delivery's owner (DeliveryOptions.owner).
   * @default - no gate: every write goes to the disk at once
   */
  readonly gate?: FairGate;
}

/** Maildir-spec unique name: <sec>.M<usec>P<pid>Q<seq>R<rand>.<host> (cr.yp.to/proto/maildir.html). */
export class UniqueNames {
  private seq = 0;
  private readonly host: string;
  /** Random bytes drawn 256 names at a time: one getrandom per name showed in delivery profiles. */
  private readonly random = Buffer.alloc(1024);
  private randomAt = this.random.length;

  constructor(host = hostname()) {
    // '/' and ':' may not appear in a Maildir name (':' starts the info part).
    this.host = host.replace(/\//g, '\\057').replace(/:/g, '\\072');
  }

  next(): string {
    const now = process.hrtime.bigint();
    const wall = Date.now();
    const usec = Number((now / 1000n) % 1_000_000n);
    if (this.randomAt === this.random.length) {
      randomFillSync(this.random);
      this.randomAt = 0;
    }
    const rand = this.random.toString('hex', this.randomAt, (this.randomAt += 4));
    return `${Math.floor(wall / 1000)}.M${usec}P${process.pid}Q${++this.seq}R${rand}.${this.host}`;
  }
}

export class MaildirDelivery implements IMessageDelivery {
  private readonly names: UniqueNames;
  private readonly durable: boolean;
  /** Maildirs known to exist (created or seen) — saves a mkdir per delivery. */
  private readonly known = new Set<string>();
  private readonly dirSync = new DirectorySyncer();

  constructor(private readonly props: MaildirDeliveryProps) {
    this.names = new UniqueNames(props.hostname);
    this.durable = props.fsync ?? true;
  }

  async deliver(all: readonly DeliveryTarget[], message: Readable | Buffer, opts: DeliveryOptions = {}): Promise<DeliveryResult> {
    if (all.length === 0) throw new MailfleetError('BAD_REQUEST', 'delivery without targets', { status: 400 });
    let targets = all;
    let refused: number[] = [];
    let dirs = targets.map((t) => maildirPath(this.props.root, t.address, t.folder));
    const base = this.names.next();
    const spool = join(dirs[0]!, 'tmp', base);
    const durably = <T>(op: () => Promise<T>) => this.durably(opts.owner, op);
    const created: string[] = [];
    let renamed = false;
    try {
      await Promise.all([...new Set(dirs)].map((d) => this.ensureMaildir(d)));
      const firstHeaders = Buffer.from(targets[0]!.headers ?? '');
      const size = await this.spool(spool, message, firstHeaders, durably);
      if (opts.admit) {
        // Quota: refused targets are dropped here; the spool file (in the first target's tmp/) still serves the rest.
        const ok = await opts.admit(size);
        refused = all.map((_, i) => i).filter((i) => !ok[i]);
        if (refused.length === all.length) throw new MailfleetError('OVER_QUOTA', 'every recipient is over quota', { status: 507 });
        if (refused.length > 0) {
          targets = all.filter((_, i) => ok[i]);
          dirs = dirs.filter((_, i) => ok[i]);
        }
      }
      const names = targets.map(() => `${base},S=${size}`);
      const finals = dirs.map((d) => join(d, 'new', names[0]!));
      // The spool file carries the first target's header lines: when that target was refused, every
      // admitted one gets its own copy and the spool file goes.
      const spoolOwner = refused[0] !== 0;
      const done = new Set(spoolOwner ? [dirs[0]] : []);
      for (let i = spoolOwner ? 1 : 0; i < dirs.length; i++) {
        if (done.has(dirs[i])) continue; // the same mailbox twice
        done.add(dirs[i]);
        const headers = targets[i]!.headers ?? '';
        if (headers === (all[0]!.headers ?? '') || (headers === '' && firstHeaders.length === 0)) {
          await this.linkOrCopy(spool, finals[i]!, join(dirs[i]!, 'tmp', `${base}.copy`), durably);
        } else {
          const own = Buffer.from(headers);
          names[i] = `${base},S=${size - firstHeaders.length + own.length}`;
          finals[i] = join(dirs[i]!, 'new', names[i]!);
          await this.copyWithHeaders(spool, firstHeaders.length, own, finals[i]!, join(dirs[i]!, 'tmp', `${base}.copy`), durably);
        }
        created.push(finals[i]!);
      }
      if (spoolOwner) {
        await rename(spool, finals[0]!);
        created.push(finals[0]!);
      } else await unlink(spool);
      renamed = true;
      if (this.durable) await Promise.all([...new Set(dirs)].map((d) => durably(() => this.dirSync.sync(join(d, 'new')))));
      await this.account(targets, names);
      targets.forEach((t, i) => {
        try {
          this.props.onDelivered?.(t.address, t.folder, names[i]!);
        } catch {
          // a listener's failure must not turn a durable delivery into an error
        }
      });
      return { ids: targets.map(() => base), size, ...(refused.length > 0 ? { refused } : {}) };
    } catch (e) {
      // A Maildir removed behind our back is recreated on the next delivery.
      for (const d of dirs) this.known.delete(d);
      await Promise.all([...(renamed ? [] : [spool]), ...created].map((p) => unlink(p).catch(() => undefined)));
      throw storeError(e);
    }
  }

  /** A durable write through the gate, when there is one (the owner '' when the caller named none). */
  private durably<T>(owner: string | undefined, op: () => Promise<T>): Promise<T> {
    return this.props.gate ? this.props.gate.run(owner ?? '', op) : op();
  }

  /** Each user's usage file takes the copy its mailbox got (one per user, whatever the folder). */
  private async account(targets: readonly DeliveryTarget[], names: readonly string[]): Promise<void> {
    const per = new Map<string, { bytes: number; messages: number }>();
    const seen = new Set<string>();
    targets.forEach((t, i) => {
      const dir = maildirPath(this.props.root, t.address, t.folder);
      if (seen.has(dir)) return; // the same mailbox twice got one copy
      seen.add(dir);
      const user = maildirPath(this.props.root, t.address);
      const u = per.get(user) ?? { bytes: 0, messages: 0 };
      u.bytes += Number(names[i]!.slice(names[i]!.lastIndexOf(',S=') + 3));
      u.messages++;
      per.set(user, u);
    });
    // Durable already: a usage file that cannot be updated is drift for recalc, not a failed delivery.
    await Promise.all([...per].map(([d, u]) => addUsage(d, u).catch(() => undefined)));
  }

  private async ensureMaildir(dir: string): Promise<void> {
    if (this.known.has(dir)) return;
    const first = await mkdir(join(dir, 'new'), { recursive: true });
    await Promise.all([mkdir(join(dir, 'cur'), { recursive: true }), mkdir(join(dir, 'tmp'), { recursive: true })]);
    if (first !== undefined && this.durable) {
      // New directories: make each link durable up to the first one that already existed.
      await this.dirSync.sync(dir);
      for (let d = dir; d.length >= first.length; d = dirname(d)) await this.dirSync.sync(dirname(d));
    }
    this.known.add(dir);
  }

  private async spool(path: string, message: Readable | Buffer, headers: Buffer, durably: Durably): Promise<number> {
    let fd: number | undefined;
    let size = headers.length;
    /** True once the data went out through O_DSYNC writes, so no fdatasync is needed. */
    let synced = false;
    // Gather small chunks into bigger writes: one syscall per ~64 KiB, not per network chunk.
    let pending: Buffer[] = headers.length > 0 ? [headers] : [];
    let pendingBytes = headers.length;
    const flush = async (last: boolean): Promise<void> => {
      const buf = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      if (fd === undefined) {
        // Everything in one write: let the write itself be durable (O_DSYNC) instead of a separate fdatasync.
        synced = last && this.durable && buf.length > 0;
        fd = await fdOpen(path, SPOOL_FLAGS | (synced ? constants.O_DSYNC : 0));
      }
      await fdWriteAll(fd, buf);
    };
    try {
      if (Buffer.isBuffer(message)) {
        pending.push(message);
        pendingBytes += message.length;
        size += message.length;
      } else {
        for await (const chunk of message as AsyncIterable<Buffer | string>) {
          const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
          pending.push(b);
          pendingBytes += b.length;
          size += b.length;
          if (pendingBytes >= 65536) await flush(false);
        }
      }
      // The last write is the durable one when it is the only one (O_DSYNC): it goes through the gate.
      if (pendingBytes > 0 || fd === undefined) await (fd === undefined && this.durable ? durably(() => flush(true)) : flush(true));
      if (this.durable && !synced) await durably(() => fdSync(fdatasync, fd!));
    } finally {
      if (fd !== undefined) await fdClose(fd);
    }
    return size;
  }

  /** A copy into another Maildir: `own` header lines (none for a plain copy), then the spool file from `skip` on; fsync, rename. */
  private async copyWithHeaders(from: string, skip: number, own: Buffer, to: string, tmpCopy: string, durably: Durably): Promise<void> {
    const fd = await fdOpen(tmpCopy, SPOOL_FLAGS);
    try {
      if (own.length > 0) await fdWriteAll(fd, own);
      for await (const chunk of createReadStream(from, { start: skip }) as AsyncIterable<Buffer>) await fdWriteAll(fd, chunk);
      if (this.durable) await durably(() => fdSync(fdatasync, fd));
    } catch (e) {
      await fdClose(fd);
      await unlink(tmpCopy).catch(() => undefined);
      throw e;
    }
    await fdClose(fd);
    await rename(tmpCopy, to);
  }

  private async linkOrCopy(from: string, to: string, tmpCopy: string, durably: Durably): Promise<void> {
    try {
      await link(from, to);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    }
    // Another filesystem: copy into that Maildir's tmp/, fsync, then rename into new/.
    await this.copyWithHeaders(from, 0, Buffer.alloc(0), to, tmpCopy, durably);
  }
}

type Durably = <T>(op: () => Promise<T>) => Promise<T>;

const SPOOL_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;

// Plain-fd wrappers of the callback API: fs/promises wraps each fd in a FileHandle (an EventEmitter with
// its own close bookkeeping), which is measurable at thousands of messages per second.
function fdOpen(path: string, flags: number, mode = 0o600): Promise<number> {
  return new Promise((res, rej) => open(path, flags, mode, (e, fd) => (e ? rej(e) : res(fd))));
}

function fdClose(fd: number): Promise<void> {
  return new Promise((res, rej) => close(fd, (e) => (e ? rej(e) : res())));
}

function fdSync(fn: typeof fsync | typeof fdatasync, fd: number): Promise<void> {
  return new Promise((res, rej) => fn(fd, (e) => (e ? rej(e) : res())));
}

function fdWrite(fd: number, buf: Buffer, off: number): Promise<number> {
  return new Promise((res, rej) => write(fd, buf, off, buf.length - off, null, (e, n) => (e ? rej(e) : res(n))));
}

async function fdWriteAll(fd: number, buf: Buffer): Promise<void> {
  for (let off = 0; off < buf.length; ) off += await fdWrite(fd, buf, off);
}

/** An fs error as the store's typed error: ENOSPC/EDQUOT is STORE_FULL, any other is STORE_UNAVAILABLE. */
export function storeError(e: unknown): MailfleetError {
  if (isMailfleetError(e)) return e;
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT')
    return new MailfleetError('STORE_FULL', `mail store full (${code})`, { status: 507, cause: e });
  return new MailfleetError('STORE_UNAVAILABLE', `mail store unavailable (${code ?? (e as Error).message})`, { status: 503, cause: e });
}

/**
 * fsync of a directory, coalesced: callers arriving while one runs share the next. While fsyncs follow
 * each other without a pause the directory stays open (an open + close less per fsync), for at most
 * `reuseMs` from its open, so a directory replaced behind our back is synced by path again soon after.
 */
export class DirectorySyncer {
  private readonly state = new Map<string, SyncState>();

  /**
   * @param reuseMs how long one open directory fd serves a burst of fsyncs (default 250 ms).
   * @param io how a directory is opened, fsynced and closed (tests pass their own). @default node:fs
   */
  constructor(
    private readonly reuseMs = 250,
    private readonly io: DirectoryIo = DIRECTORY_IO,
  ) {}

  sync(dir: string): Promise<void> {
    let s = this.state.get(dir);
    if (!s) {
      s = {};
      this.state.set(dir, s);
    }
    const st = s;
    // A run is queued (`next`) from the moment the running one settled until it starts: join it. Starting
    // one here as well would run two at once on the one fd, and the first to finish closed it under the
    // other (EBADF, then close(undefined): a delivery failed; found by bench/durable-gate, whose gate
    // resumes deliveries in that gap).
    if (st.next) return st.next;
    if (!st.running) return this.run(dir, st);
    const again = () => {
      st.next = undefined;
      return this.run(dir, st);
    };
    st.next = st.running.then(again, again);
    return st.next;
  }

  private run(dir: string, st: SyncState): Promise<void> {
    const p = this.fsync(dir, st).finally(() => {
      if (st.running === p) st.running = undefined;
      if (!st.running && !st.next) {
        this.state.delete(dir);
        // The burst is over: nobody waits for this close.
        if (st.fd !== undefined) this.io.close(st.fd);
        st.fd = undefined;
      }
    });
    st.running = p;
    return p;
  }

  private async fsync(dir: string, st: SyncState): Promise<void> {
    if (st.fd !== undefined && performance.now() - st.openedAt! > this.reuseMs) {
      this.io.close(st.fd);
      st.fd = undefined;
    }
    if (st.fd === undefined) {
      st.fd = await this.io.open(dir);
      st.openedAt = performance.now();
    }
    const fd = st.fd;
    try {
      await this.io.sync(fd);
    } catch (e) {
      if (st.fd === fd) {
        this.io.close(fd);
        st.fd = undefined;
      }
      throw e;
    }
  }
}

/** A directory's open, fsync and close, as DirectorySyncer does them. */
export interface DirectoryIo {
  open(dir: string): Promise<number>;
  sync(fd: number): Promise<void>;
  /** Fire and forget: nobody waits for a directory's close. */
  close(fd: number): void;
}

const DIRECTORY_IO: DirectoryIo = {
  open: (dir) => fdOpen(dir, constants.O_RDONLY | constants.O_DIRECTORY, 0),
  sync: (fd) => fdSync(fsync, fd),
  close: (fd) => close(fd, () => undefined),
};

interface SyncState {
  running?: Promise<void>;
  next?: Promise<void>;
  /** The open directory while a burst of fsyncs lasts. */
  fd?: number;
  openedAt?: number;
}
