/** IMAP wire forms of values: atoms, quoted strings, literals, NIL, lists, dates. */
import type { ImapValue } from '../../store/mailbox/mime.js';

/** Quoted when it can be, else a literal (8-bit, CR/LF, or long). Buffers stay bytes. */
export function istring(v: string | Buffer): string | Buffer[] {
  // Most values (ENVELOPE fields) are short printable ASCII: quoted straight from the string, without
  // the Buffer a FETCH of 20 envelopes made some 200 times.
  if (typeof v === 'string' && v.length < 1024 && isQuotableAscii(v)) return `"${v.replace(/[\\"]/g, (m) => '\\' + m)}"`;
  return istringBytes(typeof v === 'string' ? Buffer.from(v, 'utf8') : v);
}

/** The byte-wise rule (RFC 3501 §4.3): quoted if short and every byte may be in a quoted string, else a literal. */
export function istringBytes(b: Buffer): string | Buffer[] {
  let quotable = b.length < 1024;
  for (let i = 0; quotable && i < b.length; i++) {
    const c = b[i]!;
    if (c === 0x0d || c === 0x0a || c === 0 || c > 0x7e) quotable = false;
  }
  if (quotable) return `"${b.toString('latin1').replace(/[\\"]/g, (m) => '\\' + m)}"`;
  return [Buffer.from(`{${b.length}}\r\n`), b];
}

/** Every character 7-bit, none of NUL, CR, LF, DEL (what a quoted string may carry). */
function isQuotableAscii(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 0x0d || c === 0x0a || c === 0 || c > 0x7e) return false;
  }
  return true;
}

export function nstring(v: string | Buffer | null | undefined): string | Buffer[] {
  return v === null || v === undefined ? 'NIL' : istring(v);
}

/** Appends the wire form of a structured value to `out` (strings collected in `out` as pieces). */
export function serialize(v: ImapValue, out: Array<string | Buffer>): void {
  if (v === null) out.push('NIL');
  else if (typeof v === 'number') out.push(String(v));
  else if (typeof v === 'string') pushPiece(out, istring(v));
  else {
    out.push('(');
    // Lists that open a list follow each other without SP: an address list is 1*address and a multipart
    // is 1*body before its subtype (RFC 3501 §9, as Dovecot writes them); everything after is SP-separated.
    let leading = true;
    v.forEach((x, i) => {
      const isList = Array.isArray(x);
      if (i > 0 && !(leading && isList)) out.push(' ');
      if (!isList) leading = false;
      serialize(x, out);
    });
    out.push(')');
  }
}

export function pushPiece(out: Array<string | Buffer>, p: string | Buffer[]): void {
  if (typeof p === 'string') out.push(p);
  else out.push(...p);
}

/** Joins pieces into one write when they are all strings; keeps buffers otherwise. */
export function toWire(pieces: ReadonlyArray<string | Buffer>): Buffer {
  return Buffer.concat(pieces.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p)));
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** INTERNALDATE form, in UTC: "17-Jul-1996 09:44:25 +0000". */
export function imapDate(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/** Parses date-time ("17-Jul-1996 02:44:25 -0700") or date ("1-Feb-1994"); undefined if invalid. */
export function parseImapDate(s: string, withTime: boolean): Date | undefined {
  const m = withTime
    ? /^ ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/.exec(s)
    : /^(\d{1,2})-([A-Za-z]{3})-(\d{4})$/.exec(s);
  if (!m) return undefined;
  const mon = MONTHS.findIndex((x) => x.toLowerCase() === m[2]!.toLowerCase());
  if (mon < 0) return undefined;
  if (!withTime) return new Date(Date.UTC(Number(m[3]), mon, Number(m[1])));
  const utc = Date.UTC(Number(m[3]), mon, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]));
  const off = (Number(m[8]) * 60 + Number(m[9])) * 60_000 * (m[7] === '+' ? 1 : -1);
  return new Date(utc - off);
}
