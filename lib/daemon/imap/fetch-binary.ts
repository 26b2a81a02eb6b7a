/**
 * FETCH BINARY[…], BINARY.PEEK[…] and BINARY.SIZE[…] (RFC 3516): a part with its content transfer
 * encoding undone (base64, quoted-printable), so a phone fetches a 10 MB attachment as 10 MB, not
 * 13.5 MB of base64 it decodes itself. A section names a part (no HEADER/TEXT/MIME: RFC 3516 §4.1);
 * BINARY[] and a multipart or message/rfc822 part are rebuilt with each leaf decoded and its
 * Content-Transfer-Encoding field saying `binary` (as Dovecot does). An encoding other than 7bit, 8bit,
 * binary, base64 and quoted-printable answers NO [UNKNOWN-CTE]. Decoded data that holds NUL, or was
 * decoded, goes out as literal8 `~{n}`.
 */
import { MailfleetError } from '../../errors.js';
import { headerValue, type MimePart } from '../../store/mailbox/mime.js';
import { decodeQuotedPrintable } from '../../store/mailbox/transfer.js';
import { bad } from './args.js';

export interface BinaryAtt {
  readonly k: 'BINARY';
  readonly peek: boolean;
  /** BINARY.SIZE: the decoded size only. */
  readonly size: boolean;
  readonly path: readonly number[];
  readonly partial?: readonly [number, number | undefined];
  /** As echoed: BINARY[1.2]<0>, BINARY.SIZE[1]. */
  readonly label: string;
}

/** A BINARY fetch attribute, or undefined when the atom is not one. */
export function parseBinaryAtt(atom: string): BinaryAtt | undefined {
  const up = atom.toUpperCase();
  if (!up.startsWith('BINARY')) return undefined;
  const m = /^BINARY(\.PEEK|\.SIZE)?\[([0-9.]*)\](?:<(\d{1,10})(?:\.(\d{1,10}))?>)?$/.exec(up);
  if (!m) throw bad(`Invalid fetch attribute ${atom}`);
  const spec = m[2]!;
  if (spec !== '' && !/^[1-9]\d{0,8}(?:\.[1-9]\d{0,8})*$/.test(spec)) throw bad(`Invalid binary section ${spec}`);
  const path = spec === '' ? [] : spec.split('.').map(Number);
  const size = m[1] === '.SIZE';
  if (size && m[3] !== undefined) throw bad('BINARY.SIZE takes no partial');
  const partial = m[3] !== undefined ? ([Number(m[3]), m[4] !== undefined ? Number(m[4]) : undefined] as const) : undefined;
  return { k: 'BINARY', peek: m[1] === '.PEEK', size, path, partial, label: `${size ? 'BINARY.SIZE' : 'BINARY'}[${spec}]${partial ? `<${partial[0]}>` : ''}` };
}

/** Does fetching this attribute set \Seen? */
export function binarySetsSeen(a: BinaryAtt): boolean {
  return !a.peek && !a.size;
}

/** The response pieces of one BINARY attribute of one message. */
export async function binaryItem(a: BinaryAtt, buf: Buffer, tree: () => Promise<MimePart>): Promise<Array<string | Buffer>> {
  const root = await tree();
  const part = a.path.length === 0 ? root : partAt(root, a.path);
  const out = { decoded: false };
  let bytes = part === undefined ? Buffer.alloc(0) : a.path.length === 0 ? render(part, buf, out) : renderBody(part, buf, out);
  if (a.size) return [`${a.label} ${bytes.length}`];
  if (a.partial) {
    const [start, len] = a.partial;
    bytes = bytes.subarray(Math.min(start, bytes.length), len === undefined ? bytes.length : Math.min(start + len, bytes.length));
  }
  const literal8 = out.decoded || bytes.includes(0);
  return [`${a.label} ${literal8 ? '~' : ''}{${bytes.length}}\r\n`, bytes];
}

/** The part a section path names, as FETCH BODY[path] navigates (RFC 3501 §6.4.5). */
function partAt(root: MimePart, path: readonly number[]): MimePart | undefined {
  let part: MimePart | undefined;
  for (const n of path) {
    const container = part === undefined ? root : part.message;
    if (!container) {
      part = part && part.children.length > 0 ? part.children[n - 1] : undefined;
      if (!part) return undefined;
      continue;
    }
    if (container.children.length > 0) part = container.children[n - 1];
    else if (n === 1) part = container;
    else return undefined;
    if (!part) return undefined;
  }
  return part;
}

function unknownCte(cte: string): MailfleetError {
  return new MailfleetError('BAD_REQUEST', `Unknown Content-Transfer-Encoding ${cte.slice(0, 40)}`, { status: 400, details: { imapCode: 'UNKNOWN-CTE' } });
}

type Cte = 'identity' | 'base64' | 'quoted-printable';

function cteOf(p: MimePart): Cte {
  const v = (headerValue(p.headers, 'content-transfer-encoding') ?? '').trim().toLowerCase();
  if (v === '' || v === '7bit' || v === '8bit' || v === 'binary') return 'identity';
  if (v === 'base64' || v === 'quoted-printable') return v;
  throw unknownCte(v);
}

/** A part with its header: the Content-Transfer-Encoding field of a decoded leaf becomes `binary`. */
function render(p: MimePart, buf: Buffer, out: { decoded: boolean }): Buffer {
  const header = buf.subarray(p.headerStart, p.bodyStart);
  const isLeaf = p.children.length === 0 && !p.message;
  if (isLeaf && cteOf(p) !== 'identity') return Buffer.concat([binaryHeader(header), renderBody(p, buf, out)]);
  return Buffer.concat([header, renderBody(p, buf, out)]);
}

/** A part's body decoded; a container's body with each child rendered in place. */
function renderBody(p: MimePart, buf: Buffer, out: { decoded: boolean }): Buffer {
  const kids = p.message ? [p.message] : p.children;
  if (kids.length === 0) {
    const raw = buf.subarray(p.bodyStart, p.end);
    const cte = cteOf(p);
    if (cte === 'identity') return raw;
    out.decoded = true;
    return cte === 'base64' ? Buffer.from(raw.toString('latin1'), 'base64') : decodeQuotedPrintable(raw);
  }
  const pieces: Buffer[] = [];
  let at = p.bodyStart;
  for (const k of kids) {
    pieces.push(buf.subarray(at, k.headerStart), render(k, buf, out));
    at = k.end;
  }
  pieces.push(buf.subarray(at, p.end));
  return Buffer.concat(pieces);
}

/** The header block with its Content-Transfer-Encoding field (and folded lines) replaced by `binary`. */
function binaryHeader(header: Buffer): Buffer {
  const lines = header.toString('latin1').split('\r\n');
  const out: string[] = [];
  let skipping = false;
  for (const l of lines) {
    if (skipping && (l.startsWith(' ') || l.startsWith('\t'))) continue;
    skipping = false;
    if (l.slice(0, 26).toLowerCase() === 'content-transfer-encoding:') {
      out.push('Content-Transfer-Encoding: binary');
      skipping = true;
      continue;
    }
    out.push(l);
  }
  return Buffer.from(out.join('\r\n'), 'latin1');
}
