/**
 * COMPRESS=DEFLATE (RFC 4978): the session's socket wrapped in raw DEFLATE streams, one each way. Every
 * response is flushed with Z_SYNC_FLUSH (a corked batch — untagged updates plus the tagged reply — is one
 * flush), so IDLE updates and replies reach the client at once. Works over plain TCP and TLS alike (it
 * wraps whatever socket the session has). Input is inflated with backpressure all the way: a small
 * compressed burst that inflates to megabytes stops the socket instead of filling memory.
 *
 * zlib memory per session is fixed (deflate window 2^13 and memLevel 6, inflate window 2^15, which a
 * client may use) and reserved from a per-daemon budget, imap.maxCompressMemoryBytes: beyond it COMPRESS
 * answers NO [LIMIT] and the session continues uncompressed.
 */
import { Duplex } from 'node:stream';
import { constants, createDeflateRaw, createInflateRaw, type DeflateRaw, type InflateRaw } from 'node:zlib';
import { LiteralBudget } from './literal-budget.js';

const DEFLATE_WINDOW_BITS = 13;
const DEFLATE_MEM_LEVEL = 6;
const INFLATE_WINDOW_BITS = 15;
const CHUNK = 16 * 1024;

/** zlib's own formula (zconf.h) plus one output chunk each way. */
export const COMPRESS_SESSION_BYTES = (1 << (DEFLATE_WINDOW_BITS + 2)) + (1 << (DEFLATE_MEM_LEVEL + 9)) + (1 << INFLATE_WINDOW_BITS) + 7 * 1024 + 2 * CHUNK;

/** One budget per daemon (keyed like the literal budget, by the daemon's deps object). */
const budgets = new WeakMap<object, LiteralBudget>();

/** Reserves one session's zlib memory; returns its release, or undefined when the budget is spent. */
export function reserveCompress(owner: object, limitBytes: number): (() => void) | undefined {
  let b = budgets.get(owner);
  if (!b) budgets.set(owner, (b = new LiteralBudget(limitBytes)));
  if (!b.reserve(COMPRESS_SESSION_BYTES)) return undefined;
  let done = false;
  return () => {
    if (done) return;
    done = true;
    b.release(COMPRESS_SESSION_BYTES);
  };
}

/** The raw socket seen through DEFLATE: what the session reads is inflated, what it writes is deflated. */
export class DeflateSocket extends Duplex {
  private readonly inflate: InflateRaw;
  private readonly deflate: DeflateRaw;

  constructor(private readonly raw: Duplex) {
    super({ allowHalfOpen: false });
    this.inflate = createInflateRaw({ windowBits: INFLATE_WINDOW_BITS, chunkSize: CHUNK });
    this.deflate = createDeflateRaw({ windowBits: DEFLATE_WINDOW_BITS, memLevel: DEFLATE_MEM_LEVEL, chunkSize: CHUNK });
    raw.on('data', this.onRaw);
    raw.once('end', () => this.inflate.end());
    raw.once('close', () => this.destroy());
    this.inflate.on('data', (d: Buffer) => {
      if (!this.push(d)) this.inflate.pause();
    });
    this.inflate.on('drain', () => raw.resume());
    this.inflate.once('end', () => this.push(null));
    this.inflate.on('error', (e) => this.destroy(e));
    this.deflate.on('data', (d: Buffer) => {
      if (raw.write(d)) return;
      this.deflate.pause();
      raw.once('drain', () => this.deflate.resume());
    });
    this.deflate.on('error', (e) => this.destroy(e));
  }

  private readonly onRaw = (c: Buffer): void => {
    if (!this.inflate.write(c)) this.raw.pause();
  };

  override _read(): void {
    this.inflate.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.deflate.write(chunk);
    this.deflate.flush(constants.Z_SYNC_FLUSH, () => cb());
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (e?: Error | null) => void): void {
    for (const c of chunks) this.deflate.write(c.chunk);
    this.deflate.flush(constants.Z_SYNC_FLUSH, () => cb());
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.deflate.once('end', () => {
      this.raw.end();
      cb();
    });
    this.deflate.end();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.raw.off('data', this.onRaw);
    this.inflate.destroy();
    this.deflate.destroy();
    if (err) this.raw.destroy();
    cb(err);
  }
}
