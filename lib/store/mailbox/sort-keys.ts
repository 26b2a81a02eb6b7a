/**
 * The per-message keys SORT and THREAD (RFC 5256) compare, computed once from the header block and kept
 * in the summary cache (mailbox.ts): base subject, sent date, first From/To/Cc mailbox, Message-ID and
 * the parent references. Everything here reads text anyone can send to port 25: hand-written scans,
 * linear in the input, no backtracking RegExp.
 */
import { parseAddressList } from './address.js';

export interface SortKeys {
  /** Base subject (RFC 5256 §2.1), casemapped (comparator key, see casemap()). */
  readonly subject: string;
  /** The base subject extraction removed a Re:/Fwd:, a "(fwd)" trailer or a "[fwd: …]" wrapper. */
  readonly reply: boolean;
  /** Sent date (Date header) in ms since the epoch; undefined when missing or unreadable (INTERNALDATE then). */
  readonly date?: number;
  /** addr-mailbox of the first From / To / Cc address, casemapped; "" when there is none. */
  readonly from: string;
  readonly to: string;
  readonly cc: string;
  /** The first valid msg-id of Message-ID, without the angle brackets. */
  readonly messageId?: string;
  /** The valid msg-ids of References, or else the first valid one of In-Reply-To (RFC 5256 §3 REFERENCES 1). */
  readonly refs: readonly string[];
}

const isWsp = (c: number) => c === 0x20 || c === 0x09;

/**
 * i;unicode-casemap (RFC 5051) as RFC 5256 asks for SORT and THREAD: each code point to its simple
 * upper-case mapping (titlecase differs only for the four Latin digraph letters), then NFKD. ASCII takes
 * a fast path (i;ascii-casemap gives the same answer there).
 */
export function casemap(s: string): string {
  let ascii = true;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) ascii = false;
  if (ascii) return s.toUpperCase();
  let out = '';
  for (const ch of s) {
    const u = ch.toUpperCase();
    // Simple mapping only: a full mapping that expands (ß → SS) keeps the letter.
    out += [...u].length === 1 ? u : ch;
  }
  return out.normalize('NFKD');
}

/** Lower-cases ASCII letters only (the RFC 5256 §5 ABNF literals are case-insensitive ASCII). */
function lowerAt(s: string, i: number): number {
  const c = s.charCodeAt(i);
  return c >= 0x41 && c <= 0x5a ? c + 0x20 : c;
}

function startsWithCi(s: string, at: number, end: number, lit: string): boolean {
  if (end - at < lit.length) return false;
  for (let k = 0; k < lit.length; k++) if (lowerAt(s, at + k) !== lit.charCodeAt(k)) return false;
  return true;
}

/**
 * RFC 5256 §2.1 base subject of a decoded subject, and whether it was a reply or forward. Works on
 * indexes into one string: `close[i]` (the next bracket at or after i) makes each subj-blob test O(1),
 * so the whole extraction is linear however the brackets nest.
 */
export function baseSubject(decoded: string): { base: string; reply: boolean } {
  // (1) Tabs and continuations to spaces, runs of spaces to one (slices, not a string per character).
  const words: string[] = [];
  let from = -1;
  for (let i = 0; i <= decoded.length; i++) {
    const c = i < decoded.length ? decoded.charCodeAt(i) : 0x20;
    const ws = c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
    if (ws && from >= 0) {
      words.push(decoded.slice(from, i));
      from = -1;
    } else if (!ws && from < 0) from = i;
  }
  // Leading and trailing white space only ever matters as removable WSP: dropped here already.
  const s = words.join(' ');
  const n = s.length;
  // nextBracket[i]: index of the first '[' or ']' at or after i (n when none).
  const nextBracket = new Int32Array(n + 1);
  nextBracket[n] = n;
  for (let i = n - 1; i >= 0; i--) nextBracket[i] = s[i] === '[' || s[i] === ']' ? i : nextBracket[i + 1]!;
  /** End of the subj-blob at i (after its trailing WSP), or -1. */
  const blob = (i: number, end: number): number => {
    if (i >= end || s[i] !== '[') return -1;
    const k = nextBracket[i + 1]!;
    if (k >= end || s[k] !== ']') return -1;
    let j = k + 1;
    while (j < end && isWsp(s.charCodeAt(j))) j++;
    return j;
  };
  /** End of the subj-refwd at i, or -1: ("re" / ("fw" ["d"])) *WSP [subj-blob] ":". */
  const refwd = (i: number, end: number): number => {
    let j: number;
    if (startsWithCi(s, i, end, 're')) j = i + 2;
    else if (startsWithCi(s, i, end, 'fwd')) j = i + 3;
    else if (startsWithCi(s, i, end, 'fw')) j = i + 2;
    else return -1;
    while (j < end && isWsp(s.charCodeAt(j))) j++;
    const b = blob(j, end);
    if (b >= 0) j = b;
    return j < end && s[j] === ':' ? j + 1 : -1;
  };
  let start = 0;
  let end = n;
  let reply = false;
  for (;;) {
    // (2) Trailing "(fwd)" and WSP.
    for (;;) {
      if (end > start && isWsp(s.charCodeAt(end - 1))) end--;
      else if (end - start >= 5 && startsWithCi(s, end - 5, end, '(fwd)')) {
        end -= 5;
        reply = true;
      } else break;
    }
    // (3)-(5) Leading subj-leaders and subj-blobs.
    for (;;) {
      if (start < end && isWsp(s.charCodeAt(start))) {
        start++;
        continue;
      }
      // *subj-blob subj-refwd: the blobs up to the first non-blob, then a refwd there.
      let j = start;
      const blobEnds: number[] = [];
      for (let b = blob(j, end); b >= 0; b = blob(j, end)) blobEnds.push((j = b));
      const r = refwd(j, end);
      if (r >= 0) {
        start = r;
        reply = true;
        continue;
      }
      // (4) No leader: drop the blobs one by one while something is left after them (the retries of
      // (3) between them fail the same way, at j).
      if (blobEnds.length === 0) break;
      let k = 0;
      while (k < blobEnds.length && blobEnds[k]! < end) start = blobEnds[k++]!;
      break;
    }
    // (6) "[fwd:" … "]" around everything: unwrap and repeat from (2).
    if (end - start >= 6 && startsWithCi(s, start, end, '[fwd:') && s[end - 1] === ']') {
      start += 5;
      end -= 1;
      reply = true;
      continue;
    }
    break;
  }
  return { base: s.slice(start, end), reply };
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
/** RFC 5322 §4.3 obsolete zone names (military letters count as +0000 there). */
const ZONES: Record<string, number> = { ut: 0, gmt: 0, z: 0, est: -300, edt: -240, cst: -360, cdt: -300, mst: -420, mdt: -360, pst: -480, pdt: -420 };

/**
 * An RFC 5322 Date header as ms since the epoch (time and zone applied), or undefined. Words are
 * split by hand around comments, commas and spaces; obsolete 2- and 3-digit years as RFC 5322 §4.3.
 */
export function parseSentDate(v: string): number | undefined {
  const words: string[] = [];
  let w = '';
  let depth = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v[i]!;
    if (c === '(') depth++;
    else if (c === ')' && depth > 0) depth--;
    else if (depth === 0 && c !== ',' && c !== ' ' && c !== '\t' && c !== '\r' && c !== '\n') {
      w += c;
      continue;
    }
    if (w) words.push(w);
    w = '';
  }
  if (w) words.push(w);
  for (let i = 0; i + 2 < words.length; i++) {
    const day = Number(words[i]);
    const month = MONTHS.indexOf(words[i + 1]!.slice(0, 3).toLowerCase());
    let year = Number(words[i + 2]);
    if (!Number.isInteger(day) || day < 1 || day > 31 || month < 0 || !Number.isInteger(year) || year < 0) continue;
    if (year < 50) year += 2000;
    else if (year < 1000) year += 1900;
    const time = (words[i + 3] ?? '').split(':').map(Number);
    const [h = 0, m = 0, sec = 0] = time.length >= 2 && time.every((x) => Number.isInteger(x)) ? time : [];
    const zone = words[i + 4] ?? '';
    let offset = 0;
    if ((zone[0] === '+' || zone[0] === '-') && zone.length === 5 && Number.isInteger(Number(zone.slice(1)))) {
      const z = Number(zone.slice(1));
      offset = (zone[0] === '-' ? -1 : 1) * (Math.floor(z / 100) * 60 + (z % 100));
    } else offset = ZONES[zone.toLowerCase()] ?? 0;
    const t = Date.UTC(year, month, day, h, m, sec) - offset * 60_000;
    return Number.isFinite(t) ? t : undefined;
  }
  return undefined;
}

/**
 * The msg-ids of a Message-ID / References / In-Reply-To value: each `<left@right>` with white space
 * removed; one without an '@' is not valid (skipped, as Dovecot skips it).
 */
export function msgIds(v: string | undefined): string[] {
  const out: string[] = [];
  if (!v) return out;
  let i = 0;
  while (i < v.length) {
    const open = v.indexOf('<', i);
    if (open < 0) break;
    const close = v.indexOf('>', open + 1);
    if (close < 0) break;
    const next = v.indexOf('<', open + 1);
    if (next >= 0 && next < close) {
      i = next; // "<a <b@c>": the inner one
      continue;
    }
    let id = '';
    for (let k = open + 1; k < close; k++) {
      const c = v.charCodeAt(k);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0d && c !== 0x0a) id += v[k];
    }
    if (id.includes('@')) out.push(id);
    i = close + 1;
  }
  return out;
}

function firstMailbox(v: string | undefined): string {
  if (!v) return '';
  for (const a of parseAddressList(Buffer.from(v, 'binary').toString('utf8'))) if (a.group === undefined) return casemap(a.mailbox ?? '');
  return '';
}

/**
 * Sort keys from the raw header fields (latin1 "binary" values as mime.ts keeps them) and the already
 * decoded subject.
 */
export function sortKeysOf(header: (name: string) => string | undefined, decodedSubject: string | undefined): SortKeys {
  const { base, reply } = baseSubject(decodedSubject ?? '');
  const date = header('date');
  const refs = msgIds(header('references'));
  return {
    subject: casemap(base),
    reply,
    date: date === undefined ? undefined : parseSentDate(date),
    from: firstMailbox(header('from')),
    to: firstMailbox(header('to')),
    cc: firstMailbox(header('cc')),
    messageId: msgIds(header('message-id'))[0],
    refs: refs.length > 0 ? refs : msgIds(header('in-reply-to')).slice(0, 1),
  };
}
