/**
 * The change log beside a folder's UID list (`mailfleet-uidlist.log`), as Dovecot's dovecot.index.log is
 * to its index: a locked pass appends one record of what it changed (one write, one fdatasync) instead
 * of rewriting the whole list; readers apply the records past the offset they read to on top of the last
 * list snapshot; the list is rewritten with everything folded in (and the log removed) once the log
 * passes a size threshold (mailbox.ts, changeLogBytes).
 *
 * File: a header line `MFL1 G<generation>\n`, then records `R<length> <crc32 hex>\n<payload>`. The
 * generation is the one the list names on its `L<generation>` line: a log left behind by a rewrite of
 * the list (crash between the list's rename and the log's removal) names an older one and is ignored,
 * its records already being in the list. A record is acknowledged only after its fdatasync, so a torn
 * last record (length past the end, or a checksum that does not match) was never acknowledged: readers
 * stop before it, and the next writer (under the folder lock) truncates it away before appending.
 *
 * Payload, one record per locked pass:
 *   H V<uidvalidity> N<uidnext> M<modseq> C<cur mtime> R<first recent> F<history floor>
 *   E <uid set>                 UIDs that left the folder (optional)
 *   X <modseq>:<uid set> …      expunge history entries added (optional)
 *   <uid> <modseq> <size> <date> <file name>   records added or changed (list lines)
 */
export const CHANGE_LOG_FILE = 'mailfleet-uidlist.log';
const MAGIC = 'MFL1';

const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/** CRC-32 (IEEE), as zlib computes it (node 20 has no zlib.crc32). */
export function crc32(buf: Uint8Array): number {
  let c = -1;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

export function logHeader(generation: string): Buffer {
  return Buffer.from(`${MAGIC} G${generation}\n`);
}

export function frameRecord(payload: string): Buffer {
  const body = Buffer.from(payload);
  return Buffer.concat([Buffer.from(`R${body.length} ${crc32(body).toString(16)}\n`), body]);
}

/** The generation a log names and where its records start; undefined for a torn or foreign header. */
export function parseLogHeader(buf: Buffer): { generation: string; end: number } | undefined {
  const nl = buf.indexOf(0x0a);
  if (nl < 0 || nl > 64) return undefined;
  const line = buf.toString('latin1', 0, nl);
  if (!line.startsWith(`${MAGIC} G`) || line.length === MAGIC.length + 2) return undefined;
  return { generation: line.slice(MAGIC.length + 2), end: nl + 1 };
}

/**
 * Whole records in `buf` (which starts at file offset `base`), in order, each with the file offset after
 * it. Stops at the first record that is incomplete or fails its checksum.
 */
export function readRecords(buf: Buffer, base: number): Array<{ payload: string; end: number }> {
  const out: Array<{ payload: string; end: number }> = [];
  let at = 0;
  for (;;) {
    const nl = buf.indexOf(0x0a, at);
    if (nl < 0 || nl - at > 32 || buf[at] !== 0x52 /* R */) break;
    const [len, sum] = buf.toString('latin1', at + 1, nl).split(' ');
    const n = Number(len);
    if (!Number.isSafeInteger(n) || n < 0 || sum === undefined || nl + 1 + n > buf.length) break;
    const body = buf.subarray(nl + 1, nl + 1 + n);
    if (crc32(body).toString(16) !== sum) break;
    at = nl + 1 + n;
    out.push({ payload: body.toString('utf8'), end: base + at });
  }
  return out;
}
