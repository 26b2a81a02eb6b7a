/**
 * One journal entry on disk: the message bytes, then its envelope as JSON, then a fixed 16-byte tail
 * `<JSON length, 10 digits> MFJ1\n`. The envelope goes last because the size, digest and Message-ID are
 * known only once the bytes have passed; the tail lets a reader find it without scanning the message.
 */
import type { JournalEnvelope } from './types.js';

const MAGIC = ' MFJ1\n';
const TAIL_BYTES = 10 + MAGIC.length;

export function entryTrailer(envelope: JournalEnvelope): Buffer {
  const json = Buffer.from(JSON.stringify(envelope));
  return Buffer.concat([json, Buffer.from(`${String(json.length).padStart(10, '0')}${MAGIC}`)]);
}

/** Envelope and message of a whole entry file; undefined when the tail is missing or torn (a crash mid-write). */
export function parseEntry(file: Buffer): { envelope: JournalEnvelope; message: Buffer } | undefined {
  if (file.length < TAIL_BYTES) return undefined;
  const tail = file.subarray(file.length - TAIL_BYTES);
  if (tail.subarray(10).toString('latin1') !== MAGIC) return undefined;
  const len = Number(tail.subarray(0, 10).toString('latin1'));
  if (!Number.isInteger(len) || len <= 0 || len > file.length - TAIL_BYTES) return undefined;
  const jsonStart = file.length - TAIL_BYTES - len;
  let envelope: JournalEnvelope;
  try {
    envelope = JSON.parse(file.subarray(jsonStart, file.length - TAIL_BYTES).toString('utf8')) as JournalEnvelope;
  } catch {
    return undefined;
  }
  if (envelope.v !== 1 || envelope.size !== jsonStart) return undefined;
  return { envelope, message: file.subarray(0, jsonStart) };
}

/**
 * Every entry of a spool file, in order: a group commit writes several entries back to back into one file
 * (spool.ts). Read from the end: each tail gives its envelope, whose size gives where its message starts.
 * undefined when any entry is missing or torn (a crash mid-write).
 */
export function parseEntries(file: Buffer): { envelope: JournalEnvelope; message: Buffer }[] | undefined {
  const out: { envelope: JournalEnvelope; message: Buffer }[] = [];
  for (let end = file.length; end > 0; ) {
    const part = file.subarray(0, end);
    if (part.length < TAIL_BYTES) return undefined;
    const tail = part.subarray(part.length - TAIL_BYTES);
    if (tail.subarray(10).toString('latin1') !== MAGIC) return undefined;
    const len = Number(tail.subarray(0, 10).toString('latin1'));
    if (!Number.isInteger(len) || len <= 0 || len > part.length - TAIL_BYTES) return undefined;
    const jsonStart = part.length - TAIL_BYTES - len;
    let envelope: JournalEnvelope;
    try {
      envelope = JSON.parse(part.subarray(jsonStart, part.length - TAIL_BYTES).toString('utf8')) as JournalEnvelope;
    } catch {
      return undefined;
    }
    if (envelope.v !== 1 || !Number.isInteger(envelope.size) || envelope.size < 0 || envelope.size > jsonStart) return undefined;
    out.push({ envelope, message: part.subarray(jsonStart - envelope.size, jsonStart) });
    end = jsonStart - envelope.size;
  }
  return out.length > 0 ? out.reverse() : undefined;
}

/**
 * The Message-ID of a header block (folded lines joined), without angle brackets. Plain string scanning:
 * this is client input (no regular expressions on it).
 */
export function messageIdOf(head: Buffer): string | undefined {
  let end = head.indexOf('\r\n\r\n');
  if (end < 0) end = head.length;
  const text = head.toString('latin1', 0, end);
  const lower = text.toLowerCase();
  for (let at = 0; at < text.length; ) {
    const nl = lower.indexOf('\n', at);
    const lineEnd = nl < 0 ? text.length : nl;
    if (lower.startsWith('message-id:', at)) {
      let value = text.slice(at + 11, lineEnd);
      // Folded continuation lines start with a space or tab.
      for (let next = lineEnd + 1; next < text.length && (text[next] === ' ' || text[next] === '\t'); ) {
        const nl2 = text.indexOf('\n', next);
        const e2 = nl2 < 0 ? text.length : nl2;
        value += text.slice(next, e2);
        next = e2 + 1;
      }
      value = value.trim();
      const open = value.indexOf('<');
      const close = value.indexOf('>', open + 1);
      const id = open >= 0 && close > open ? value.slice(open + 1, close) : value;
      return id.length > 0 && id.length <= 998 ? id : undefined;
    }
    at = lineEnd + 1;
  }
  return undefined;
}
