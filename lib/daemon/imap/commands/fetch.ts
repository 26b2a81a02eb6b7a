import { defineCommand, SELECTED } from '../command.js';
import { Args, bad, seqSetArg, type SeqSet, type WorkLimits } from '../args.js';
import { parseMime, resolveSection, type MimePart, type SectionText } from '../../../store/mailbox/mime.js';
import { isMailfleetError } from '../../../errors.js';
import type { MessageRecord } from '../../../store/mailbox/index.js';
import type { Token } from '../parser.js';
import type { ImapSession } from '../session.js';
import { imapDate, serialize } from '../wire.js';
import type { ImapValue } from '../../../store/mailbox/mime.js';
import { TimeSlice } from '../time-slice.js';
import { enableCondstore, modesOf, parseFetchModifiers, uidSet, vanishedFor, type FetchModifiers } from '../condstore.js';
import { binaryItem, binarySetsSeen, parseBinaryAtt, type BinaryAtt } from '../fetch-binary.js';
import { parsePreviewAtt, previewItem, type PreviewAtt } from '../fetch-preview.js';

type Simple = 'FLAGS' | 'INTERNALDATE' | 'RFC822.SIZE' | 'ENVELOPE' | 'BODYSTRUCTURE' | 'BODY' | 'UID' | 'RFC822' | 'RFC822.HEADER' | 'RFC822.TEXT';

interface SectionAtt {
  readonly k: 'SECTION';
  readonly peek: boolean;
  readonly path: readonly number[];
  readonly text: SectionText | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT';
  readonly fields: readonly string[];
  readonly partial?: readonly [number, number | undefined];
  /** The section as echoed in the response: BODY[1.HEADER.FIELDS (SUBJECT)]<0> */
  readonly label: string;
}
type Att = { readonly k: Simple } | SectionAtt | { readonly k: 'MODSEQ' } | BinaryAtt | PreviewAtt;

const SIMPLE = new Set<string>(['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODYSTRUCTURE', 'BODY', 'UID', 'RFC822', 'RFC822.HEADER', 'RFC822.TEXT']);
const MACROS: Record<string, Simple[]> = {
  ALL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE'],
  FAST: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE'],
  FULL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY'],
};

function parseSection(atom: string): SectionAtt {
  const m = /^BODY(\.PEEK)?\[([^\]]*)\](?:<(\d+)(?:\.(\d+))?>)?$/i.exec(atom);
  if (!m) throw bad(`Invalid fetch attribute ${atom}`);
  const spec = m[2]!;
  const sm = /^((?:\d+\.)*\d+)?\.?(HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME)?(?: \(([^)]*)\))?$/i.exec(spec);
  if (!sm) throw bad(`Invalid section ${spec}`);
  const path = sm[1] ? sm[1].split('.').map(Number) : [];
  if (path.some((n) => n === 0)) throw bad('Section part numbers start at 1');
  const text = (sm[2] ?? '').toUpperCase() as SectionAtt['text'];
  if (text === 'MIME' && path.length === 0) throw bad('MIME needs a part number');
  const isFields = text === 'HEADER.FIELDS' || text === 'HEADER.FIELDS.NOT';
  if (isFields !== (sm[3] !== undefined)) throw bad('HEADER.FIELDS needs a field list');
  const fields = isFields ? sm[3]!.trim().split(/\s+/).map((f) => f.replace(/^"|"$/g, '').toUpperCase()) : [];
  const partial = m[3] !== undefined ? ([Number(m[3]), m[4] !== undefined ? Number(m[4]) : undefined] as const) : undefined;
  const sectionLabel = `${path.join('.')}${path.length > 0 && text ? '.' : ''}${text}${isFields ? ` (${fields.join(' ')})` : ''}`;
  return { k: 'SECTION', peek: m[1] !== undefined, path, text, fields, partial, label: `BODY[${sectionLabel}]${partial ? `<${partial[0]}>` : ''}` };
}

function parseAtt(t: Token): Att[] {
  if (t.t !== 'atom') throw bad('Invalid fetch attribute');
  const up = t.v.toUpperCase();
  if (MACROS[up]) return MACROS[up]!.map((k) => ({ k }));
  if (SIMPLE.has(up)) return [{ k: up as Simple }];
  if (up === 'MODSEQ') return [{ k: 'MODSEQ' }]; // CONDSTORE (RFC 7162 §3.1.4)
  if (up === 'PREVIEW') return [parsePreviewAtt(undefined)]; // RFC 8970, fetch-preview.ts
  // BINARY (RFC 3516): fetch-binary.ts.
  const binary = parseBinaryAtt(t.v);
  if (binary) return [binary];
  return [parseSection(t.v)];
}

/** The attribute list; PREVIEW may be followed by its modifier list (RFC 8970: PREVIEW (LAZY)). */
function parseAtts(tokens: readonly Token[]): Att[] {
  const out: Att[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.t === 'atom' && t.v.toUpperCase() === 'PREVIEW') {
      const mods = tokens[i + 1]?.t === 'list' ? tokens[++i] : undefined;
      out.push(parsePreviewAtt(mods));
    } else out.push(...parseAtt(t));
  }
  return out;
}

function parseFetch(t: readonly Token[], limits: WorkLimits) {
  const a = new Args(t, limits);
  const set = seqSetArg(a);
  const x = a.next('fetch attributes');
  const atts = x.t === 'list' ? parseAtts(x.v) : parseAtt(x);
  if (atts.length === 0) throw bad('Empty fetch attribute list');
  // CONDSTORE/QRESYNC fetch modifiers: (CHANGEDSINCE n [VANISHED]) — condstore.ts.
  const mods = parseFetchModifiers(a.left > 0 ? a.list('fetch modifiers') : undefined);
  a.end();
  return { set, atts, mods };
}

function headerFields(header: Buffer, fields: readonly string[], not: boolean): Buffer {
  const text = header.toString('latin1');
  const want = new Set(fields.map((f) => f.toLowerCase()));
  const lines = text.split(/\r\n(?![ \t])/);
  const out: string[] = [];
  for (const l of lines) {
    if (l === '') continue;
    const i = l.indexOf(':');
    if (i <= 0) continue;
    const has = want.has(l.slice(0, i).trim().toLowerCase());
    if (has !== not) out.push(l);
  }
  return Buffer.from(out.map((l) => l + '\r\n').join('') + '\r\n', 'latin1');
}

/** Bytes of a section (before the partial range). */
async function sectionBytes(a: SectionAtt, buf: Buffer, tree: () => Promise<MimePart>): Promise<Buffer> {
  if (a.path.length === 0 && (a.text === '' || a.text === 'HEADER' || a.text === 'TEXT' || a.text === 'HEADER.FIELDS' || a.text === 'HEADER.FIELDS.NOT')) {
    const i = buf.indexOf('\r\n\r\n');
    const split = i < 0 ? buf.length : i + 4;
    if (a.text === '') return buf;
    if (a.text === 'TEXT') return buf.subarray(split);
    const head = buf.subarray(0, split);
    return a.text === 'HEADER' ? head : headerFields(head, a.fields, a.text === 'HEADER.FIELDS.NOT');
  }
  const root = await tree();
  const fieldsOf = a.text === 'HEADER.FIELDS' || a.text === 'HEADER.FIELDS.NOT';
  const r = resolveSection(root, a.path, fieldsOf ? 'HEADER' : (a.text as SectionText));
  if (!r) return Buffer.alloc(0);
  const bytes = buf.subarray(r.start, r.end);
  return fieldsOf ? headerFields(bytes, a.fields, a.text === 'HEADER.FIELDS.NOT') : bytes;
}

/**
 * Wire forms of cached ENVELOPE / BODYSTRUCTURE values, by the value (the summary the folder keeps; a new
 * summary is a new key, a dropped one takes its entry along). A mail client fetches the same envelopes
 * again and again; serialising one was some 50 small pieces each time.
 */
const wireCache = new WeakMap<object, ReadonlyArray<string | Buffer>>();

function wireOf(v: ImapValue): ReadonlyArray<string | Buffer> {
  if (!Array.isArray(v)) {
    const out: Array<string | Buffer> = [];
    serialize(v, out);
    return out;
  }
  let w = wireCache.get(v);
  if (!w) {
    const out: Array<string | Buffer> = [];
    serialize(v, out);
    // All strings (the usual case): one string. With literals (8-bit text): the pieces as they are.
    w = out.every((x) => typeof x === 'string') ? [out.join('')] : out;
    wireCache.set(v, w);
  }
  return w;
}

const FLUSH_BYTES = 64 * 1024;
/** Slice size for writing large literals (each slice waits for the socket to drain). */
const WRITE_SLICE_BYTES = 256 * 1024;

function literal(out: Array<string | Buffer>, b: Buffer): void {
  out.push(`{${b.length}}\r\n`, b);
}

/**
 * One message's FETCH response. A message another session expunged after this one last synced (RFC 2180
 * §4.1) is still answered, as Dovecot answers it: what the index holds (UID, FLAGS, sizes, dates, cached
 * ENVELOPE/BODYSTRUCTURE) and NIL for what needed the file; `gone.expunged` makes the tagged reply
 * OK [EXPUNGEISSUED]. The client learns of the EXPUNGE at its next command that allows one.
 */
async function fetchOne(
  s: ImapSession,
  seq: number,
  r: MessageRecord,
  atts: readonly Att[],
  byUid: boolean,
  setSeen: boolean,
  gone: { expunged: boolean },
  /** CONDSTORE: MODSEQ asked for (item or CHANGEDSINCE), and whether the connection enabled CONDSTORE. */
  cs: { readonly want: boolean; readonly enabled: boolean } = { want: false, enabled: false },
): Promise<Array<string | Buffer>> {
  const sel = s.selected!;
  const out: Array<string | Buffer> = [`* ${seq} FETCH (`];
  const items: Array<Array<string | Buffer>> = [];
  let buf: Buffer | undefined;
  const content = async () => (buf ??= await sel.mailbox.read(r));
  let root: MimePart | undefined;
  const tree = async () => (root ??= await parseMime(await content(), sel.mailbox.mimeLimits));
  let rec = r;
  if (setSeen && !r.letters.includes('S')) {
    const changed = await sel.mailbox.setFlags([r.uid], 'add', 'S');
    sel.noteOwn(changed);
    if (changed[0]) rec = changed[0];
  }
  const seen = new Set<string>();
  const wantFlags = atts.some((a) => a.k === 'FLAGS') || rec !== r;
  // RFC 7162 §3.1: with CONDSTORE enabled, a FETCH that set \Seen reports the new MODSEQ too (in a
  // FETCH of its own after this one, as Dovecot does).
  const implicit = cs.enabled && !cs.want && rec !== r;
  if (byUid) items.push([`UID ${r.uid}`]);
  for (const a of atts) {
    const p: Array<string | Buffer> = [];
    try {
      await fetchItem(a, p);
    } catch (e) {
      if (!isMailfleetError(e, 'NOT_FOUND')) throw e;
      gone.expunged = true;
      p.length = 0;
      p.push(`${a.k === 'SECTION' || a.k === 'BINARY' ? a.label : a.k} NIL`);
    }
    if (p.length === 0) continue;
    const key = typeof p[0] === 'string' ? p[0] : '';
    if (seen.has(key)) continue;
    seen.add(key);
    items.push(p);
  }
  if (wantFlags) items.push([`FLAGS (${sel.flagsOf(rec).join(' ')})`]);
  if (cs.want) items.push([`MODSEQ (${rec.modseq})`]);
  items.forEach((p, i) => {
    if (i > 0) out.push(' ');
    out.push(...p);
  });
  out.push(')\r\n');
  if (implicit) out.push(`* ${seq} FETCH (${byUid ? `UID ${r.uid} ` : ''}MODSEQ (${rec.modseq}))\r\n`);
  return out;

  async function fetchItem(a: Att, p: Array<string | Buffer>): Promise<void> {
    switch (a.k) {
      case 'UID':
        if (!byUid) p.push(`UID ${r.uid}`);
        break;
      case 'FLAGS':
      case 'MODSEQ': // placed after FLAGS, from the record as stored now
        break;
      case 'INTERNALDATE':
        p.push(`INTERNALDATE "${imapDate(r.date)}"`);
        break;
      case 'RFC822.SIZE':
        p.push(`RFC822.SIZE ${r.size}`);
        break;
      case 'ENVELOPE':
        p.push('ENVELOPE ', ...wireOf((await sel.mailbox.summary(r)).envelope));
        break;
      case 'BODYSTRUCTURE':
        p.push('BODYSTRUCTURE ', ...wireOf((await sel.mailbox.summary(r)).bodystructure));
        break;
      case 'BODY':
        p.push('BODY ', ...wireOf((await sel.mailbox.summary(r)).body));
        break;
      case 'RFC822':
        p.push('RFC822 ');
        literal(p, await content());
        break;
      case 'RFC822.HEADER':
      case 'RFC822.TEXT': {
        const b = await content();
        const i = b.indexOf('\r\n\r\n');
        const split = i < 0 ? b.length : i + 4;
        p.push(`${a.k} `);
        literal(p, a.k === 'RFC822.HEADER' ? b.subarray(0, split) : b.subarray(split));
        break;
      }
      case 'BINARY':
        p.push(...(await binaryItem(a, await content(), tree)));
        break;
      case 'PREVIEW':
        p.push(...(await previewItem(a, sel.mailbox, r)));
        break;
      case 'SECTION': {
        let bytes = await sectionBytes(a, await content(), tree);
        if (a.partial) {
          const [start, len] = a.partial;
          bytes = bytes.subarray(Math.min(start, bytes.length), len === undefined ? bytes.length : Math.min(start + len, bytes.length));
        }
        p.push(`${a.label} `);
        literal(p, bytes);
        break;
      }
    }
  }
}

async function runFetch(s: ImapSession, a: { set: SeqSet; atts: readonly Att[]; mods: FetchModifiers }, byUid: boolean) {
  const sel = s.selected!;
  if (!byUid && !sel.inRange(a.set)) throw bad('Invalid message sequence number');
  // --- CONDSTORE/QRESYNC (RFC 7162 §3.1.4, §3.2.6)
  const changedSince = a.mods.changedSince;
  if (a.mods.vanished && (!byUid || !modesOf(s).qresync)) throw bad(byUid ? 'QRESYNC is not enabled' : 'VANISHED needs UID FETCH');
  const wantModseq = changedSince !== undefined || a.atts.some((x) => x.k === 'MODSEQ');
  if (wantModseq) enableCondstore(s);
  const cs = { want: wantModseq, enabled: modesOf(s).condstore };
  if (a.mods.vanished && changedSince !== undefined) {
    const gone = vanishedFor(sel.mailbox, changedSince, a.set);
    if (gone.length > 0) await s.writeAsync(`* VANISHED (EARLIER) ${uidSet(gone)}\r\n`);
  }
  // --- end CONDSTORE/QRESYNC
  const setSeen = !sel.readOnly && a.atts.some((x) => (x.k === 'SECTION' && !x.peek) || x.k === 'RFC822' || x.k === 'RFC822.TEXT' || (x.k === 'BINARY' && binarySetsSeen(x)));
  const gone = { expunged: false };
  // Responses are gathered and written in chunks of ~64 KiB: one write per message made a 1,000-message
  // FETCH FLAGS cost 1,000 syscalls. writeAsync still waits for drain, so memory stays bounded. Pieces
  // stay strings until the write: runs of them are joined and encoded once (a Buffer per piece was most
  // of FETCH's allocation).
  const pending: Array<string | Buffer> = [];
  let pendingBytes = 0;
  const flush = async () => {
    if (pending.length === 0) return;
    const pieces = pending.splice(0);
    pendingBytes = 0;
    // Small pieces are joined into one write; a large literal (BODY[] of a 20 MB message) goes out in
    // slices of itself: copying it whole held the event loop for hundreds of ms on a busy host.
    let small: Buffer[] = [];
    let text: string[] = [];
    const endText = () => {
      if (text.length > 0) small.push(Buffer.from(text.join(''), 'utf8'));
      text = [];
    };
    const writeSmall = async () => {
      if (small.length === 0 && text.length > 0) await s.writeAsync(text.join(''));
      else {
        endText();
        if (small.length > 0) await s.writeAsync(small.length === 1 ? small[0]! : Buffer.concat(small));
      }
      small = [];
      text = [];
    };
    for (const b of pieces) {
      if (typeof b === 'string') text.push(b);
      else if (b.length < FLUSH_BYTES) {
        endText();
        small.push(b);
      } else {
        await writeSmall();
        for (let off = 0; off < b.length && !s.isClosed; off += WRITE_SLICE_BYTES) await s.writeAsync(b.subarray(off, off + WRITE_SLICE_BYTES));
      }
    }
    await writeSmall();
  };
  const slice = new TimeSlice();
  for (const m of sel.resolve(a.set, byUid)) {
    if (changedSince !== undefined && m.rec.modseq <= changedSince) continue; // CONDSTORE
    await slice.pause();
    try {
      // QRESYNC: every FETCH response carries the UID (RFC 7162 §3.2.4).
      for (const p of await fetchOne(s, m.seq, m.rec, a.atts, byUid || modesOf(s).qresync, setSeen, gone, cs)) {
        pending.push(p);
        pendingBytes += p.length; // a string's length: close enough to its bytes for when to flush
      }
      if (pendingBytes >= FLUSH_BYTES) await flush();
    } catch (e) {
      await flush(); // what was fetched before the failure still reaches the client, as it used to
      throw e;
    }
    if (s.isClosed) break;
  }
  await flush();
  if (setSeen) sel.handle.changed();
  return gone.expunged ? { code: 'EXPUNGEISSUED', text: 'Some messages were already expunged' } : { text: 'FETCH completed' };
}

export const fetch = defineCommand({
  name: 'FETCH',
  states: SELECTED,
  expungeAfter: false,
  parse: parseFetch,
  handler: (s, a) => runFetch(s, a, false),
});

export const uidFetch = defineCommand({
  name: 'UID FETCH',
  states: SELECTED,
  parse: parseFetch,
  handler: (s, a) => runFetch(s, a, true),
});
