/**
 * Durable Maildir delivery (IMessageDelivery). For one message to N mailboxes:
 *   1. stream it once into <first>/tmp/<name> (counting the size), fsync, close;
 *   2. hard-link that file into <other>/new/<name>,S=<size> for every other mailbox (copy + fsync +
 *      rename across filesystems) — a link is atomic, so new/ never shows a partial file;
 *   3. rename the spool file into <first>/new/;
 *   4. fsync every new/ directory, so the names survive a crash;
 * and only then resolve: the caller answers 250 after that. A crash at any point leaves at most a
 * file in tmp/ (invisible to readers) and never a partial message in new/.
 *
 * Directory fsyncs are coalesced per directory (group commit): callers that renamed into a directory
 * while an fsync of it was running share the next one, so concurrent deliveries to one mailbox do not
 * each pay for their own.
 */
import { constants, createReadStream } from 'node:fs';
import { link, mkdir, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { isMailfleetError, MailfleetError } from '../../errors.js';
import type { DeliveryResult, DeliveryTarget, IMessageDelivery } from '../types.js';
import { maildirPath } from './paths.js';

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
}

/** Maildir-spec unique name: <sec>.M<usec>P<pid>Q<seq>R<rand>.<host> (cr.yp.to/proto/maildir.html). */
export class UniqueNames {
  private seq = 0;
  private readonly host: string;

  constructor(host = hostname()) {
    // '/' and ':' may not appear in a Maildir name (':' starts the info part).
    this.host = host.replace(/\//g, '\\057').replace(/:/g, '\\072');
  }

  next(): string {
    const now = process.hrtime.bigint();
    const wall = Date.now();
    const usec = Number((now / 1000n) % 1_000_000n);
    return `${Math.floor(wall / 1000)}.M${usec}P${process.pid}Q${++this.seq}R${randomBytes(4).toString('hex')}.${this.host}`;
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

  async deliver(targets: readonly DeliveryTarget[], message: Readable | Buffer): Promise<DeliveryResult> {
    if (targets.length === 0) throw new MailfleetError('BAD_REQUEST', 'delivery without targets', { status: 400 });
    const dirs = targets.map((t) => maildirPath(this.props.root, t.address, t.folder));
    const base = this.names.next();
    const spool = join(dirs[0]!, 'tmp', base);
    const created: string[] = [];
    let renamed = false;
    try {
      await Promise.all([...new Set(dirs)].map((d) => this.ensureMaildir(d)));
      const size = await this.spool(spool, message);
      const name = `${base},S=${size}`;
      const finals = dirs.map((d) => join(d, 'new', name));
      for (let i = 1; i < dirs.length; i++) {
        if (finals[i] === finals[0] || created.includes(finals[i]!)) continue; // the same mailbox twice
        await this.linkOrCopy(spool, finals[i]!, join(dirs[i]!, 'tmp', `${base}.copy`));
        created.push(finals[i]!);
      }
      await rename(spool, finals[0]!);
      renamed = true;
      created.push(finals[0]!);
      if (this.durable) await Promise.all([...new Set(dirs)].map((d) => this.dirSync.sync(join(d, 'new'))));
      targets.forEach((t) => {
        try {
          this.props.onDelivered?.(t.address, t.folder, name);
        } catch {
          // a listener's failure must not turn a durable delivery into an error
        }
      });
      return { ids: targets.map(() => base), size };
    } catch (e) {
      // A Maildir removed behind our back is recreated on the next delivery.
      for (const d of dirs) this.known.delete(d);
      await Promise.all([...(renamed ? [] : [spool]), ...created].map((p) => unlink(p).catch(() => undefined)));
      throw storeError(e);
    }
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

  private async spool(path: string, message: Readable | Buffer): Promise<number> {
    const fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    let size = 0;
    try {
      if (Buffer.isBuffer(message)) {
        await writeAll(fh, message);
        size = message.length;
      } else {
        // Gather small chunks into bigger writes: one syscall per ~64 KiB, not per network chunk.
        let pending: Buffer[] = [];
        let pendingBytes = 0;
        for await (const chunk of message as AsyncIterable<Buffer | string>) {
          const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
          pending.push(b);
          pendingBytes += b.length;
          size += b.length;
          if (pendingBytes >= 65536) {
            await writeAll(fh, pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes));
            pending = [];
            pendingBytes = 0;
          }
        }
        if (pendingBytes > 0) await writeAll(fh, pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes));
      }
      if (this.durable) await fh.datasync();
    } finally {
      await fh.close();
    }
    return size;
  }

  private async linkOrCopy(from: string, to: string, tmpCopy: string): Promise<void> {
    try {
      await link(from, to);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    }
    // Another filesystem: copy into that Maildir's tmp/, fsync, then rename into new/.
    const fh = await open(tmpCopy, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      for await (const chunk of createReadStream(from) as AsyncIterable<Buffer>) await writeAll(fh, chunk);
      if (this.durable) await fh.datasync();
    } catch (e) {
      await fh.close();
      await unlink(tmpCopy).catch(() => undefined);
      throw e;
    }
    await fh.close();
    await rename(tmpCopy, to);
  }
}

async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    off += bytesWritten;
  }
}

/** An fs error as the store's typed error: ENOSPC/EDQUOT is STORE_FULL, any other is STORE_UNAVAILABLE. */
export function storeError(e: unknown): MailfleetError {
  if (isMailfleetError(e)) return e;
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT')
    return new MailfleetError('STORE_FULL', `mail store full (${code})`, { status: 507, cause: e });
  return new MailfleetError('STORE_UNAVAILABLE', `mail store unavailable (${code ?? (e as Error).message})`, { status: 503, cause: e });
}

/** fsync of a directory, coalesced: callers arriving while one runs share the next. */
export class DirectorySyncer {
  private readonly state = new Map<string, { running?: Promise<void>; next?: Promise<void> }>();

  sync(dir: string): Promise<void> {
    let s = this.state.get(dir);
    if (!s) {
      s = {};
      this.state.set(dir, s);
    }
    const st = s;
    if (!st.running) return this.run(dir, st);
    if (!st.next) {
      const again = () => {
        st.next = undefined;
        return this.run(dir, st);
      };
      st.next = st.running.then(again, again);
    }
    return st.next;
  }

  private run(dir: string, st: { running?: Promise<void>; next?: Promise<void> }): Promise<void> {
    const p = fsyncDir(dir).finally(() => {
      if (st.running === p) st.running = undefined;
      if (!st.running && !st.next) this.state.delete(dir);
    });
    st.running = p;
    return p;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
