/**
 * The MIME tree of one stored message, with byte offsets, and the IMAP ENVELOPE / BODYSTRUCTURE data
 * built from it. mailsplit does the MIME parsing (boundaries, header blocks); it is lossless, so summing
 * the lengths of its chunks gives exact offsets for BODY[n.MIME] / BODY[n.TEXT] fetches.
 *
 * The results are plain JSON (`ImapValue`: null | string | number | nested arrays) so the per-mailbox
 * cache can store them and the IMAP front-end serialises them without knowing MIME.
 */
import { Splitter } from '@zone-eu/mailsplit';
import { parseAddressList } from './address.js';
import libmime from 'libmime';

export type ImapValue = null | string | number | ImapValue[];

export interface MimePart {
  /** Offset of the part's header block (for the root: 0). */
  readonly headerStart: number;
  /** Offset of the first body byte (after the blank line). */
  readonly bodyStart: number;
  /** Offset just past the body (before the CRLF that precedes the next boundary). */
  end: number;
  /** Lower-case `type/subtype`; defaults follow RFC 2045 (text/plain, or message/rfc822 in a digest). */
  readonly contentType: string;
  readonly params: Readonly<Record<string, string>>;
  /** Raw, unfolded header lines as [lower-case name, value]. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly children: MimePart[];
  /** The embedded message of a message/rfc822 part. */
  message?: MimePart;
  /** Set on a root shown as one part because the message is over the MIME limits (see flatMime). */
  readonly flattened?: boolean;
}

/**
 * How much MIME structure is worth parsing for one message. A message over any of these (sent by
 * anyone to port 25) is shown as one part instead of failing every FETCH and SEARCH of its mailbox.
 * Defaults: lib/spec/defaults.ts DEFAULT_IMAP_WORK_LIMITS (imap.maxMimeParts, maxMimeDepth, maxHeaderBytes).
 */
export interface MimeLimits {
  /** Parts in the whole message, embedded messages included. @default 1000 */
  readonly maxParts: number;
  /** Nesting of multiparts and embedded messages. @default 32 */
  readonly maxDepth: number;
  /** Largest header block of one part. @default 1048576 */
  readonly maxHeaderBytes: number;
}

export const DEFAULT_MIME_LIMITS: MimeLimits = { maxParts: 1000, maxDepth: 32, maxHeaderBytes: 1024 * 1024 };

class MimeLimitError extends Error {}

interface SplitNode {
  type: 'node';
  getHeaders(): Buffer;
  contentType: string | false;
  multipart: string | false;
  parentNode: SplitNode | false;
}
interface SplitChunk {
  type: 'data' | 'body';
  value: Buffer;
}

/**
 * Parses a whole message (already in memory: messages are bounded by maxMessageSizeBytes). Never
 * throws for what the message contains: over the limits, or unparseable, it comes back flattened.
 */
export async function parseMime(buf: Buffer, limits: MimeLimits = DEFAULT_MIME_LIMITS): Promise<MimePart> {
  try {
    const budget = { parts: limits.maxParts };
    const root = await parseTree(buf, 0, 0, limits, budget);
    if (depthOf(root) > limits.maxDepth) return flatMime(buf, limits);
    return root;
  } catch {
    // EMAXLEN from mailsplit (header block too large), our own part budget, or a malformed message.
    return flatMime(buf, limits);
  }
}

/**
 * The message as one leaf part, as Dovecot shows a message whose MIME structure it will not parse: the
 * root's own type if it is a leaf type, else application/octet-stream (the body still holds boundaries);
 * headers from at most maxHeaderBytes, so ENVELOPE still shows what could be read.
 */
export function flatMime(buf: Buffer, limits: MimeLimits = DEFAULT_MIME_LIMITS): MimePart {
  const blank = buf.indexOf('\r\n\r\n');
  const headerEnd = blank < 0 ? buf.length : blank + 4;
  let head = buf.subarray(0, Math.min(headerEnd, limits.maxHeaderBytes));
  if (head.length < headerEnd) {
    // Cut at the last complete line, and never mid-fold.
    const nl = head.lastIndexOf(0x0a);
    head = head.subarray(0, nl < 0 ? 0 : nl + 1);
  }
  const headers = parseHeaderBlock(head);
  const ct = headerValue(headers, 'content-type');
  let contentType = 'text/plain';
  let params: Record<string, string> = {};
  try {
    const parsed = ct ? libmime.parseHeaderValue(ct) : { value: '', params: {} };
    const t = (parsed.value || '').toLowerCase().trim();
    if (/^[^/\s]+\/[^/\s]+$/.test(t)) {
      contentType = t.startsWith('multipart/') || t.startsWith('message/') ? 'application/octet-stream' : t;
      if (contentType === t) params = lowerKeys(parsed.params as Record<string, string>);
    }
  } catch {
    /* keep text/plain */
  }
  return { headerStart: 0, bodyStart: headerEnd, end: buf.length, contentType, params, headers, children: [], flattened: true };
}

function depthOf(p: MimePart): number {
  let d = 0;
  for (const c of p.children) d = Math.max(d, depthOf(c));
  if (p.message) d = Math.max(d, depthOf(p.message));
  return d + 1;
}

async function parseTree(buf: Buffer, base: number, depth: number, limits: MimeLimits, budget: { parts: number }): Promise<MimePart> {
  const splitter = new Splitter({ ignoreEmbedded: true, maxHeadSize: limits.maxHeaderBytes, maxChildNodes: limits.maxParts });
  const parts = new Map<SplitNode, MimePart>();
  let root: MimePart | undefined;
  let last: MimePart | undefined;
  let pos = 0;
  await new Promise<void>((resolve, reject) => {
    splitter.on('data', (d: SplitNode | SplitChunk) => {
      if (d.type === 'node') {
        if (--budget.parts < 0) {
          // Stop splitting: the rest of a 5,000-part message is not worth the event loop's time.
          splitter.destroy();
          reject(new MimeLimitError('too many MIME parts'));
          return;
        }
        const h = d.getHeaders();
        const headers = parseHeaderBlock(h);
        const parent = d.parentNode ? parts.get(d.parentNode) : undefined;
        const ct = headerValue(headers, 'content-type');
        const parsed = ct ? libmime.parseHeaderValue(ct) : { value: '', params: {} };
        let type = (parsed.value || '').toLowerCase().trim();
        if (!/^[^/\s]+\/[^/\s]+$/.test(type)) type = parent?.contentType === 'multipart/digest' ? 'message/rfc822' : 'text/plain';
        const p: MimePart = {
          headerStart: base + pos,
          bodyStart: base + pos + h.length,
          end: base + pos + h.length,
          contentType: type,
          params: lowerKeys(parsed.params as Record<string, string>),
          headers,
          children: [],
        };
        parts.set(d, p);
        if (parent) parent.children.push(p);
        else root ??= p;
        last = p;
        pos += h.length;
      } else {
        pos += d.value.length;
        if (d.type === 'body' && last) last.end = base + pos;
      }
    });
    const ee = splitter as unknown as NodeJS.EventEmitter;
    ee.on('end', () => resolve());
    ee.on('error', reject);
    void feed(splitter, buf).catch(reject);
  });
  if (!root) throw new Error('empty message');
  fixEnds(root, buf, base, base + buf.length);
  if (depth < limits.maxDepth) await parseEmbedded(root, buf, base, depth, limits, budget);
  return root;
}

/** Bytes handed to the splitter per event-loop turn: a 5,000-part message is ~20 parts per turn, not 300. */
const FEED_BYTES = 1024;

async function feed(splitter: Splitter, buf: Buffer): Promise<void> {
  // Larger steps for large messages: at most ~1,000 turns per message (a 20 MB body is few parts).
  const step = Math.max(FEED_BYTES, Math.ceil(buf.length / 1024));
  for (let off = 0; off < buf.length; off += step) {
    if (splitter.destroyed) return;
    splitter.write(buf.subarray(off, off + step));
    await new Promise<void>((r) => setImmediate(r));
  }
  if (!splitter.destroyed) splitter.end();
}

function fixEnds(p: MimePart, buf: Buffer, base: number, limit: number): void {
  p.end = Math.min(Math.max(p.end, p.bodyStart), limit);
  if (!p.contentType.startsWith('multipart/')) return;
  const boundary = p.params.boundary;
  for (let i = 0; i < p.children.length; i++) {
    const c = p.children[i]!;
    // A nested multipart ends where its parent's next delimiter line starts.
    let childLimit = limit;
    if (boundary) {
      const at = buf.indexOf(`\n--${boundary}`, c.bodyStart - base);
      if (at >= 0 && at + base <= limit) childLimit = at + base - (at > 0 && buf[at - 1] === 0x0d ? 1 : 0);
    }
    if (c.contentType.startsWith('multipart/')) c.end = childLimit;
    fixEnds(c, buf, base, childLimit);
  }
  p.end = limit;
}

async function parseEmbedded(p: MimePart, buf: Buffer, base: number, depth: number, limits: MimeLimits, budget: { parts: number }): Promise<void> {
  if (p.contentType === 'message/rfc822' && p !== undefined && p.end > p.bodyStart && !isEncoded(p)) {
    p.message = await parseTree(buf.subarray(p.bodyStart - base, p.end - base), p.bodyStart, depth + 1, limits, budget);
  }
  for (const c of p.children) await parseEmbedded(c, buf, base, depth, limits, budget);
}

function isEncoded(p: MimePart): boolean {
  const enc = (headerValue(p.headers, 'content-transfer-encoding') ?? '').toLowerCase().trim();
  return enc === 'base64' || enc === 'quoted-printable';
}

export function parseHeaderBlock(h: Buffer): Array<[string, string]> {
  const text = h.toString('binary');
  const out: Array<[string, string]> = [];
  for (const line of text.replace(/\r?\n[ \t]/g, (m) => m.slice(-1)).split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    out.push([line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim()]);
  }
  return out;
}

export function headerValue(headers: ReadonlyArray<readonly [string, string]>, name: string): string | undefined {
  return headers.find((h) => h[0] === name)?.[1];
}

function lowerKeys(o: Record<string, string>): Record<string, string> {
  const r: Record<string, string> = {};
  for (const [k, v] of Object.entries(o ?? {})) if (typeof v === 'string') r[k.toLowerCase()] = v;
  return r;
}

/** Raw header bytes are latin1-decoded above; IMAP sends them back as the original octets. */
function str(v: string | undefined): string | null {
  if (v === undefined || v === '') return null;
  return Buffer.from(v, 'binary').toString('utf8');
}

function addresses(v: string | undefined): ImapValue {
  if (!v) return null;
  const out: ImapValue[] = [];
  for (const a of parseAddressList(Buffer.from(v, 'binary').toString('utf8'))) {
    // Group markers (RFC 3501 §7.4.2): (NIL NIL "name" NIL) opens, (NIL NIL NIL NIL) closes.
    if (a.group === 'start') out.push([null, null, a.mailbox || null, null]);
    else if (a.group === 'end') out.push([null, null, null, null]);
    else out.push([a.name || null, a.route || null, a.mailbox || null, a.host || null]);
  }
  return out.length > 0 ? out : null;
}

/** ENVELOPE (RFC 3501 §7.4.2) of a message's header block. */
export function envelopeOf(headers: ReadonlyArray<readonly [string, string]>): ImapValue {
  const from = addresses(headerValue(headers, 'from'));
  const sender = addresses(headerValue(headers, 'sender')) ?? from;
  const replyTo = addresses(headerValue(headers, 'reply-to')) ?? from;
  return [
    str(headerValue(headers, 'date')),
    str(headerValue(headers, 'subject')),
    from,
    sender,
    replyTo,
    addresses(headerValue(headers, 'to')),
    addresses(headerValue(headers, 'cc')),
    addresses(headerValue(headers, 'bcc')),
    str(headerValue(headers, 'in-reply-to')),
    str(headerValue(headers, 'message-id')),
  ];
}

function paramList(params: Readonly<Record<string, string>>, skip?: string): ImapValue {
  const out: ImapValue[] = [];
  for (const [k, v] of Object.entries(params)) if (k !== skip) out.push(k.toUpperCase(), v);
  return out.length > 0 ? out : null;
}

function disposition(p: MimePart): ImapValue {
  const v = headerValue(p.headers, 'content-disposition');
  if (!v) return null;
  const parsed = libmime.parseHeaderValue(v);
  return [(parsed.value || 'attachment').toLowerCase(), paramList(lowerKeys(parsed.params as Record<string, string>))];
}

/**
 * body-fld-lines: the line ends in the part. A last line without one (a MIME part ends before the CRLF
 * that belongs to the next boundary) is not counted, as Dovecot counts.
 */
function countLines(buf: Buffer, start: number, end: number): number {
  let n = 0;
  for (let i = buf.indexOf(0x0a, start); i >= 0 && i < end; i = buf.indexOf(0x0a, i + 1)) n++;
  return n;
}

/**
 * BODYSTRUCTURE (extended) or BODY (basic) of a part, RFC 3501 §7.4.2.
 * `buf` is the whole message; part offsets are absolute.
 */
export function bodyStructureOf(p: MimePart, buf: Buffer, extended: boolean): ImapValue {
  const [type, subtype] = p.contentType.split('/') as [string, string];
  if (type === 'multipart') {
    const kids = p.children.length > 0 ? p.children.map((c) => bodyStructureOf(c, buf, extended)) : [bodyStructureOf({ ...p, contentType: 'text/plain', params: {}, children: [] }, buf, extended)];
    const out: ImapValue[] = [...kids, subtype];
    if (extended) out.push(paramList(p.params), disposition(p), str(headerValue(p.headers, 'content-language')), str(headerValue(p.headers, 'content-location')));
    return out;
  }
  const size = p.end - p.bodyStart;
  const out: ImapValue[] = [
    type,
    subtype,
    paramList(p.params) ?? (type === 'text' ? ['CHARSET', 'us-ascii'] : null),
    str(headerValue(p.headers, 'content-id')),
    str(headerValue(p.headers, 'content-description')),
    (headerValue(p.headers, 'content-transfer-encoding') ?? '7bit').toLowerCase(),
    size,
  ];
  if (p.message) {
    out.push(envelopeOf(p.message.headers), bodyStructureOf(p.message, buf, extended), countLines(buf, p.bodyStart, p.end));
  } else if (type === 'text') {
    out.push(countLines(buf, p.bodyStart, p.end));
  }
  if (extended) out.push(str(headerValue(p.headers, 'content-md5')), disposition(p), str(headerValue(p.headers, 'content-language')), str(headerValue(p.headers, 'content-location')));
  return out;
}

/** A byte range of the message named by a FETCH section's part path and text specifier. */
export type SectionText = 'HEADER' | 'TEXT' | 'MIME' | '';

export function resolveSection(root: MimePart, path: readonly number[], text: SectionText): { start: number; end: number } | undefined {
  let msg: MimePart = root; // the (sub)message whose HEADER/TEXT a bare specifier means
  let part: MimePart | undefined;
  for (const n of path) {
    const container = part === undefined ? msg : part.message;
    if (!container) {
      // Only a message/rfc822 part has sub-parts beyond a multipart's children.
      if (part && part.children.length > 0) {
        part = part.children[n - 1];
        if (!part) return undefined;
        continue;
      }
      return undefined;
    }
    msg = container;
    if (container.children.length > 0) part = container.children[n - 1];
    else if (n === 1) part = container;
    else return undefined;
    if (!part) return undefined;
  }
  if (part === undefined) {
    if (text === 'HEADER') return { start: root.headerStart, end: root.bodyStart };
    if (text === 'TEXT') return { start: root.bodyStart, end: root.end };
    if (text === 'MIME') return undefined;
    return { start: root.headerStart, end: root.end };
  }
  if (text === 'MIME') return { start: part.headerStart, end: part.bodyStart };
  if (text === 'HEADER' || text === 'TEXT') {
    const m = part.message;
    if (!m) return undefined;
    return text === 'HEADER' ? { start: m.headerStart, end: m.bodyStart } : { start: m.bodyStart, end: m.end };
  }
  return { start: part.bodyStart, end: part.end };
}

/** Decoded header text for SEARCH (encoded-words decoded, case folded by the caller). */
export function decodedHeader(v: string): string {
  try {
    return libmime.decodeWords(Buffer.from(v, 'binary').toString('utf8'));
  } catch {
    return v;
  }
}
