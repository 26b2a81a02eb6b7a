/**
 * Modified UTF-7 (RFC 3501 §5.1.3): IMAP mailbox names on the wire. Printable ASCII stands for itself
 * except '&', written '&-'; anything else is UTF-16 in modified base64 (',' for '/') between '&' and '-'.
 */

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,';

export function encodeMutf7(name: string): string {
  let out = '';
  let pending: number[] = [];
  const flush = (): void => {
    if (pending.length === 0) return;
    const bytes: number[] = [];
    for (const u of pending) bytes.push(u >> 8, u & 0xff);
    let bits = 0;
    let acc = 0;
    out += '&';
    for (const b of bytes) {
      acc = (acc << 8) | b;
      bits += 8;
      while (bits >= 6) {
        bits -= 6;
        out += B64[(acc >> bits) & 0x3f];
      }
    }
    if (bits > 0) out += B64[(acc << (6 - bits)) & 0x3f];
    out += '-';
    pending = [];
  };
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e) {
      flush();
      out += c === 0x26 ? '&-' : name[i];
    } else {
      pending.push(c);
    }
  }
  flush();
  return out;
}

/** Decodes a wire name; returns undefined when it is not valid modified UTF-7. */
export function decodeMutf7(wire: string): string | undefined {
  let out = '';
  for (let i = 0; i < wire.length; i++) {
    const ch = wire[i]!;
    const c = ch.charCodeAt(0);
    if (c < 0x20 || c > 0x7e) return undefined;
    if (ch !== '&') {
      out += ch;
      continue;
    }
    const end = wire.indexOf('-', i + 1);
    if (end < 0) return undefined;
    if (end === i + 1) {
      out += '&';
      i = end;
      continue;
    }
    let bits = 0;
    let acc = 0;
    const bytes: number[] = [];
    for (let j = i + 1; j < end; j++) {
      const v = B64.indexOf(wire[j]!);
      if (v < 0) return undefined;
      acc = ((acc << 6) | v) & 0xffffff;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        bytes.push((acc >> bits) & 0xff);
      }
    }
    // Leftover bits must be zero padding, and the run must hold whole UTF-16 units.
    if (bits >= 6 || (acc & ((1 << bits) - 1)) !== 0 || bytes.length % 2 !== 0) return undefined;
    const units: number[] = [];
    for (let k = 0; k < bytes.length; k += 2) units.push((bytes[k]! << 8) | bytes[k + 1]!);
    const s = String.fromCharCode(...units);
    // A run must not encode printable ASCII (those stand for themselves) — keeps one spelling per name.
    if (/[\x20-\x7e]/.test(s) || /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s)) return undefined;
    out += s;
    i = end;
  }
  return out;
}
