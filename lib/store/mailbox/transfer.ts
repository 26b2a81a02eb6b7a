/** Content-Transfer-Encoding decoding shared by FETCH BINARY (lib/daemon/imap/fetch-binary.ts) and PREVIEW (preview.ts). */

const HEX = (c: number) => (c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1);

/** Quoted-printable (RFC 2045 §6.7): =XX is a byte, `=` at a line end joins lines; the rest as is. */
export function decodeQuotedPrintable(b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(b.length);
  let n = 0;
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c !== 0x3d) {
      out[n++] = c;
      continue;
    }
    if (b[i + 1] === 0x0d && b[i + 2] === 0x0a) {
      i += 2;
      continue;
    }
    if (b[i + 1] === 0x0a) {
      i += 1;
      continue;
    }
    const hi = HEX(b[i + 1] ?? -1);
    const lo = HEX(b[i + 2] ?? -1);
    if (hi >= 0 && lo >= 0) {
      out[n++] = (hi << 4) | lo;
      i += 2;
    } else {
      out[n++] = c;
    }
  }
  return out.subarray(0, n);
}
