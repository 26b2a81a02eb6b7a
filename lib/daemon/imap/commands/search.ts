import { defineCommand, SELECTED } from '../command.js';
import { Args, bad, formatSet, inRanges, isSearchResult, normalizeSet, overLimit, parseSeqSet, type SeqSet, type WorkLimits } from '../args.js';
import { flagLetter } from '../../../store/mailbox/flags.js';
import { parseHeaderBlock } from '../../../store/mailbox/mime.js';
import { isMailfleetError, MailfleetError } from '../../../errors.js';
import type { MessageRecord } from '../../../store/mailbox/index.js';
import type { Token } from '../parser.js';
import type { ImapSession } from '../session.js';
import type { SelectedMailbox } from '../selected.js';
import { TimeSlice } from '../time-slice.js';
import { enableCondstore, hasModseqKey, parseModseqKey } from '../condstore.js';
import { isRev2, refuseRecentKeys } from '../rev2.js';

/** A parsed search key (RFC 3501 §6.4.4). */
export type Key =
  | { readonly op: 'all' }
  | { readonly op: 'none' }
  | { readonly op: 'flag'; readonly letter: string; readonly has: boolean }
  | { readonly op: 'recent'; readonly has: boolean }
  | { readonly op: 'keyword'; readonly keyword: string; readonly has: boolean }
  | { readonly op: 'set'; readonly set: SeqSet; readonly uid: boolean }
  | { readonly op: 'not'; readonly key: Key }
  | { readonly op: 'or'; readonly a: Key; readonly b: Key }
  | { readonly op: 'and'; readonly keys: readonly Key[] }
  | { readonly op: 'size'; readonly larger: boolean; readonly n: number }
  | { readonly op: 'date'; readonly sent: boolean; readonly cmp: 'BEFORE' | 'ON' | 'SINCE'; readonly day: number }
  | { readonly op: 'header'; readonly field: string; readonly value: string }
  | { readonly op: 'text'; readonly bodyOnly: boolean; readonly value: string }
  // CONDSTORE (RFC 7162 §3.1.5): messages whose modseq is at least `min`.
  | { readonly op: 'modseq'; readonly min: number };

const FLAG_KEYS: Record<string, [string, boolean]> = {
  ANSWERED: ['\\Answered', true],
  DELETED: ['\\Deleted', true],
  DRAFT: ['\\Draft', true],
  FLAGGED: ['\\Flagged', true],
  SEEN: ['\\Seen', true],
  UNANSWERED: ['\\Answered', false],
  UNDELETED: ['\\Deleted', false],
  UNDRAFT: ['\\Draft', false],
  UNFLAGGED: ['\\Flagged', false],
  UNSEEN: ['\\Seen', false],
};
const ADDRESS_KEYS = ['FROM', 'TO', 'CC', 'BCC', 'SUBJECT'];

/** Counts keys across one SEARCH against imap.maxSearchKeys. */
interface KeyBudget {
  left: number;
}

function parseKey(a: Args, depth: number, budget: KeyBudget): Key {
  if (depth > a.limits.maxSearchDepth) throw overLimit(`Search nested too deep (limit ${a.limits.maxSearchDepth})`);
  if (--budget.left < 0) throw overLimit(`Too many search keys (limit ${a.limits.maxSearchKeys})`);
  const t = a.next('search key');
  if (t.t === 'list') return and(t.v, depth + 1, a.limits, budget);
  if (t.t !== 'atom') throw bad('Expected search key');
  const k = t.v.toUpperCase();
  const flag = FLAG_KEYS[k];
  if (flag) return { op: 'flag', letter: flagLetter(flag[0])!, has: flag[1] };
  switch (k) {
    case 'ALL':
      return { op: 'all' };
    // \Recent as this session sees it (SelectedMailbox.isRecent); NEW is RECENT UNSEEN (RFC 3501 §6.4.4).
    case 'RECENT':
      return { op: 'recent', has: true };
    case 'OLD':
      return { op: 'recent', has: false };
    case 'NEW':
      return { op: 'and', keys: [{ op: 'recent', has: true }, { op: 'flag', letter: flagLetter('\\Seen')!, has: false }] };
    case 'KEYWORD':
    case 'UNKEYWORD':
      return { op: 'keyword', keyword: a.astring('keyword'), has: k === 'KEYWORD' };
    case 'NOT':
      return { op: 'not', key: parseKey(a, depth + 1, budget) };
    case 'MODSEQ': // CONDSTORE
      return { op: 'modseq', min: parseModseqKey(a) };
    case 'OR':
      return { op: 'or', a: parseKey(a, depth + 1, budget), b: parseKey(a, depth + 1, budget) };
    case 'UID':
      return { op: 'set', set: parseSeqSet(a.atom('UID set'), a.limits.maxSequenceSetRanges), uid: true };
    case 'LARGER':
    case 'SMALLER':
      return { op: 'size', larger: k === 'LARGER', n: a.number('size') };
    case 'BEFORE':
    case 'ON':
    case 'SINCE':
    case 'SENTBEFORE':
    case 'SENTON':
    case 'SENTSINCE': {
      const sent = k.startsWith('SENT');
      return { op: 'date', sent, cmp: k.slice(sent ? 4 : 0) as 'BEFORE' | 'ON' | 'SINCE', day: a.date('date', false).getTime() };
    }
    case 'HEADER':
      return { op: 'header', field: a.astring('header name').toLowerCase(), value: a.astring('value').toLowerCase() };
    case 'BODY':
    case 'TEXT':
      return { op: 'text', bodyOnly: k === 'BODY', value: a.astring('value').toLowerCase() };
    default:
      if (ADDRESS_KEYS.includes(k)) return { op: 'header', field: k.toLowerCase(), value: a.astring('value').toLowerCase() };
      // "$": the saved search result (SEARCHRES, RFC 5182).
      if (k === '$' || /^[\d*:,]+$/.test(k)) return { op: 'set', set: parseSeqSet(k, a.limits.maxSequenceSetRanges), uid: false };
      throw bad(`Unknown search key ${k}`);
  }
}

function and(tokens: readonly Token[], depth: number, limits: WorkLimits, budget: KeyBudget): Key {
  const a = new Args(tokens, limits);
  const keys: Key[] = [];
  while (a.left > 0) keys.push(parseKey(a, depth, budget));
  if (keys.length === 0) throw bad('Empty search');
  return keys.length === 1 ? keys[0]! : { op: 'and', keys };
}

/** Refuses a charset SEARCH cannot match in (RFC 3501 §6.4.4: NO [BADCHARSET]). */
function checkCharset(cs: string): void {
  const up = cs.toUpperCase();
  if (up !== 'UTF-8' && up !== 'US-ASCII') throw new MailfleetError('BAD_REQUEST', 'Unsupported charset', { details: { imapCode: 'BADCHARSET (UTF-8 US-ASCII)' } });
}

/**
 * The search program after the command's own arguments: `[CHARSET x] keys` for SEARCH, or (SORT and
 * THREAD, RFC 5256) a charset that is not optional, then the keys.
 */
export function parseSearchKeys(a: Args, charsetRequired: boolean): Key {
  const budget: KeyBudget = { left: a.limits.maxSearchKeys };
  let charset: string | undefined;
  if (charsetRequired) charset = a.astring('charset');
  else {
    const first = a.peek();
    if (first?.t === 'atom' && first.v.toUpperCase() === 'CHARSET') {
      a.next('CHARSET');
      checkCharset(a.astring('charset'));
    }
  }
  const keys: Key[] = [];
  while (a.left > 0) keys.push(parseKey(a, 0, budget));
  if (keys.length === 0) throw bad('Missing search key');
  // After the keys: `SORT (SUBJECT) ALL` (no charset) is a BAD for the missing keys, as Dovecot answers.
  if (charset !== undefined) checkCharset(charset);
  return keys.length === 1 ? keys[0]! : { op: 'and', keys };
}

// --- ESEARCH (RFC 4731), SEARCHRES (RFC 5182), shared with ESORT (RFC 5267) ---
export type ReturnOption = 'MIN' | 'MAX' | 'ALL' | 'COUNT' | 'SAVE';
const RETURN_OPTIONS: readonly ReturnOption[] = ['MIN', 'MAX', 'ALL', 'COUNT', 'SAVE'];

/** `RETURN (…)` when present (undefined: a plain SEARCH reply); `RETURN ()` means ALL. */
export function parseReturn(a: Args): ReadonlySet<ReturnOption> | undefined {
  const first = a.peek();
  if (first?.t !== 'atom' || first.v.toUpperCase() !== 'RETURN') return undefined;
  a.next('RETURN');
  const out = new Set<ReturnOption>();
  for (const t of a.list('return options')) {
    const o = t.t === 'atom' ? (t.v.toUpperCase() as ReturnOption) : undefined;
    if (o === undefined || !RETURN_OPTIONS.includes(o)) throw bad('Unknown search return option');
    out.add(o);
  }
  if (out.size === 0) out.add('ALL');
  return out;
}

/** A command's search program and its RETURN options (undefined: a plain reply). */
export interface SearchProgram {
  readonly key: Key;
  readonly ret?: ReadonlySet<ReturnOption>;
}

/**
 * Parses `[RETURN (…)]` then the rest with `rest`. A BAD here leaves "$" as it was (the command never
 * ran; Dovecot keeps it too); a SEARCH that fails while running empties it (RFC 5182 §2.1).
 */
export function withReturn(a: Args, rest: () => Key): SearchProgram {
  const ret = parseReturn(a);
  return { key: rest(), ret };
}

/** The matched messages in reply order: MIN/MAX are the first/last of it, SAVE keeps their UIDs. */
export interface Match {
  readonly seq: number;
  readonly uid: number;
}

/**
 * The ESEARCH line (RFC 4731 §3.1; ESORT, RFC 5267: in sort order, MIN/MAX the first and last sorted)
 * and, with SAVE, the result kept for "$". No line when SAVE is the only option (RFC 5182 §2.1).
 */
export function replyWithReturn(sel: SelectedMailbox, ret: ReadonlySet<ReturnOption>, hits: readonly Match[], byUid: boolean, tag: string, sorted: boolean): string | undefined {
  const n = (m: Match) => (byUid ? m.uid : m.seq);
  const ordered = sorted ? hits : [...hits].sort((x, y) => x.seq - y.seq);
  const min = ordered[0];
  const max = ordered[ordered.length - 1];
  if (ret.has('SAVE')) {
    const onlyMinMax = !ret.has('ALL') && !ret.has('COUNT') && (ret.has('MIN') || ret.has('MAX'));
    const keep = onlyMinMax ? [ret.has('MIN') ? min : undefined, ret.has('MAX') ? max : undefined].filter((m): m is Match => m !== undefined) : hits;
    sel.searchResult = [...new Set(keep.map((m) => m.uid))].sort((x, y) => x - y);
  }
  if (ret.size === 1 && ret.has('SAVE')) return undefined;
  let line = `* ESEARCH (TAG "${tag}")${byUid ? ' UID' : ''}`;
  if (ret.has('MIN') && min) line += ` MIN ${n(min)}`;
  if (ret.has('MAX') && max) line += ` MAX ${n(max)}`;
  if (ret.has('ALL') && hits.length > 0) line += ` ALL ${sorted ? formatRuns(ordered.map(n)) : formatSet(ordered.map(n))}`;
  if (ret.has('COUNT')) line += ` COUNT ${hits.length}`;
  return line;
}

/** A sequence-set keeping the given order: ascending consecutive runs become a:b ("5,1:3"). */
function formatRuns(nums: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < nums.length; ) {
    let j = i;
    while (j + 1 < nums.length && nums[j + 1] === nums[j]! + 1) j++;
    out.push(i === j ? String(nums[i]) : `${nums[i]}:${nums[j]}`);
    i = j + 1;
  }
  return out.join(',');
}
// --- end ESEARCH ---

function parseSearch(t: readonly Token[], limits: WorkLimits): SearchProgram {
  const a = new Args(t, limits);
  return withReturn(a, () => parseSearchKeys(a, false));
}

const CACHED_FIELDS = ['from', 'to', 'cc', 'bcc', 'subject', 'date', 'message-id'];
const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/**
 * The calendar day (as a UTC midnight, comparable with a search key's date) an RFC 5322 Date header
 * names, ignoring its time and zone: "Sat, 24 Mar 2007 23:00:00 -0500" is 24 March. Parsed by hand from
 * split words (client-supplied headers never reach a RegExp with backtracking); undefined when unreadable.
 */
export function headerDay(date: string): number | undefined {
  const words = date.replace(/\([^()]*\)/g, ' ').replace(/,/g, ' ').split(/\s+/).filter(Boolean);
  for (let i = 0; i + 2 < words.length; i++) {
    const day = Number(words[i]);
    const month = MONTHS.indexOf(words[i + 1]!.slice(0, 3).toLowerCase());
    let year = Number(words[i + 2]);
    if (!Number.isInteger(day) || day < 1 || day > 31 || month < 0 || !Number.isInteger(year)) continue;
    // Obsolete two- and three-digit years (RFC 5322 §4.3).
    if (year < 50) year += 2000;
    else if (year < 1000) year += 1900;
    return Date.UTC(year, month, day);
  }
  return undefined;
}

function dayOf(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
}

class Evaluator {
  /** Each set key's ranges, merged once per SEARCH (then a binary search per message). */
  private readonly ranges = new Map<Key, Array<[number, number]>>();
  private head?: { readonly uid: number; readonly fields: ReadonlyArray<readonly [string, string]> };
  private text?: { readonly uid: number; readonly lower: string };

  /** The message folded to lower case, once per message however many BODY/TEXT keys ask. */
  private async lowerText(r: MessageRecord): Promise<string> {
    if (this.text?.uid === r.uid) return this.text.lower;
    const lower = (await this.sel.mailbox.read(r)).toString('utf8').toLowerCase();
    this.text = { uid: r.uid, lower };
    return lower;
  }

  constructor(private readonly sel: SelectedMailbox) {}

  async test(k: Key, r: MessageRecord, seq: number): Promise<boolean> {
    switch (k.op) {
      case 'all':
        return true;
      case 'none':
        return false;
      case 'flag':
        return r.letters.includes(k.letter) === k.has;
      case 'recent':
        return this.sel.isRecent(r.uid) === k.has;
      case 'keyword': {
        // A keyword the folder never defined is on no message.
        const letter = this.sel.mailbox.keywordLetter(k.keyword);
        return (letter !== undefined && r.letters.includes(letter)) === k.has;
      }
      case 'set':
        // "$" holds UIDs, whether named as a key or after UID.
        return this.inSet(k, k.uid || isSearchResult(k.set) ? r.uid : seq);
      case 'not':
        return !(await this.test(k.key, r, seq));
      case 'or':
        return (await this.test(k.a, r, seq)) || this.test(k.b, r, seq);
      case 'and':
        for (const x of k.keys) if (!(await this.test(x, r, seq))) return false;
        return true;
      case 'size':
        return k.larger ? r.size > k.n : r.size < k.n;
      case 'date': {
        let day = dayOf(r.date);
        if (k.sent) {
          // The date as written in the Date header, in the sender's own zone (RFC 3501 §6.4.4:
          // "disregarding time and timezone"): converting to UTC moved evening mails to the next day.
          const d = (await this.sel.mailbox.summary(r)).search.date;
          day = (d !== undefined ? headerDay(d) : undefined) ?? day;
        }
        return k.cmp === 'BEFORE' ? day < k.day : k.cmp === 'ON' ? day === k.day : day >= k.day;
      }
      case 'header': {
        const sum = await this.sel.mailbox.summary(r);
        const v = sum.search[k.field];
        // A cached field answers for the header; a message without the header matches nothing, even "".
        if (v !== undefined || CACHED_FIELDS.includes(k.field)) return v !== undefined && v.toLowerCase().includes(k.value);
        // Field names are client input: compared as strings, never compiled into a RegExp.
        for (const [name, value] of await this.headers(r)) {
          if (name === k.field && Buffer.from(value, 'binary').toString('utf8').toLowerCase().includes(k.value)) return true;
        }
        return false;
      }
      case 'text': {
        const text = await this.lowerText(r);
        if (!k.bodyOnly) return text.includes(k.value);
        const i = text.indexOf('\r\n\r\n');
        return (i < 0 ? '' : text.slice(i + 4)).includes(k.value);
      }
      // --- CONDSTORE: from the index's per-message modseq.
      case 'modseq':
        return r.modseq >= k.min;
      // --- end CONDSTORE
    }
  }

  /**
   * The parsed header block of the message being tested, read once however many HEADER keys ask (a
   * 1,000-key SEARCH read each message 1,000 times), and at most imap.maxHeaderBytes of it.
   */
  private async headers(r: MessageRecord): Promise<ReadonlyArray<readonly [string, string]>> {
    if (this.head?.uid === r.uid) return this.head.fields;
    const buf = await this.sel.mailbox.read(r);
    const i = buf.indexOf('\r\n\r\n');
    const fields = parseHeaderBlock(buf.subarray(0, Math.min(i < 0 ? buf.length : i, this.sel.mailbox.mimeLimits.maxHeaderBytes)));
    this.head = { uid: r.uid, fields };
    return fields;
  }

  private inSet(k: Extract<Key, { op: 'set' }>, n: number): boolean {
    let ranges = this.ranges.get(k);
    if (!ranges) {
      const max = k.uid ? (this.sel.uids[this.sel.uids.length - 1] ?? 0) : this.sel.uids.length;
      ranges = isSearchResult(k.set) ? this.sel.searchResult.map((u): [number, number] => [u, u]) : normalizeSet(k.set, max);
      this.ranges.set(k, ranges);
    }
    return inRanges(ranges, n);
  }
}

/**
 * The messages of the session's view that match `key`, ascending, and whether some had been expunged
 * by another session meanwhile (EXPUNGEISSUED). SORT and THREAD select their messages with it too.
 */
export async function matchMessages(sel: SelectedMailbox, key: Key): Promise<{ hits: Array<Match & { readonly rec: MessageRecord }>; expunged: boolean }> {
  const ev = new Evaluator(sel);
  const hits: Array<Match & { rec: MessageRecord }> = [];
  const slice = new TimeSlice();
  let expunged = false;
  for (let i = 0; i < sel.uids.length; i++) {
    // The slice's own check is per call; a promise per message of a 10,000-message SORT showed in the profile.
    if ((i & 15) === 15) await slice.pause();
    const uid = sel.uids[i]!;
    const r = sel.mailbox.byUid(uid) ?? sel.mailbox.expungedRecord(uid);
    if (!r) {
      expunged = true;
      continue;
    }
    try {
      // ALL (what SORT and THREAD usually ask) needs no evaluation: no promise per message.
      if (key.op === 'all' || (await ev.test(key, r, i + 1))) hits.push({ seq: i + 1, uid, rec: r });
    } catch (e) {
      // Expunged by another session between the index read and the file read: it matches nothing (Dovecot too).
      if (!isMailfleetError(e, 'NOT_FOUND')) throw e;
      expunged = true;
    }
  }
  return { hits, expunged };
}

const REV2_DEFAULT_RETURN: ReadonlySet<ReturnOption> = new Set(['ALL']);

async function runSearch(s: ImapSession, p: SearchProgram, byUid: boolean, tag: string) {
  const sel = s.selected!;
  // --- CONDSTORE: a MODSEQ key enables CONDSTORE and adds the hits' highest modseq (RFC 7162 §3.1.5).
  refuseRecentKeys(s, p.key);
  const modseqKey = hasModseqKey(p.key);
  if (modseqKey) enableCondstore(s);
  // --- end CONDSTORE
  let found;
  try {
    found = await matchMessages(sel, p.key);
  } catch (e) {
    if (p.ret?.has('SAVE')) sel.searchResult = [];
    throw e;
  }
  const { hits, expunged } = found;
  // CONDSTORE: the highest modseq of the hits, after the result (SEARCH) or as an ESEARCH item (§3.1.5).
  let highest = 0;
  if (modseqKey) for (const h of hits) highest = Math.max(highest, h.rec.modseq);
  // IMAP4rev2 answers every SEARCH with ESEARCH; no RETURN means RETURN (ALL) (RFC 9051 §6.4.4).
  const ret = p.ret ?? (isRev2(s) ? REV2_DEFAULT_RETURN : undefined);
  if (ret) {
    const line = replyWithReturn(sel, ret, hits, byUid, tag, false);
    if (line !== undefined) await s.writeAsync(`${line}${highest > 0 ? ` MODSEQ ${highest}` : ''}\r\n`);
  } else
    await s.writeAsync(`* SEARCH${hits.length > 0 ? ' ' + hits.map((h) => (byUid ? h.uid : h.seq)).join(' ') : ''}${highest > 0 ? ` (MODSEQ ${highest})` : ''}\r\n`);
  return expunged ? { code: 'EXPUNGEISSUED', text: 'SEARCH completed' } : { text: 'SEARCH completed' };
}

export const search = defineCommand({
  name: 'SEARCH',
  states: SELECTED,
  expungeAfter: false,
  parse: parseSearch,
  handler: (s, p, tag) => runSearch(s, p, false, tag),
});

export const uidSearch = defineCommand({
  name: 'UID SEARCH',
  states: SELECTED,
  parse: parseSearch,
  handler: (s, p, tag) => runSearch(s, p, true, tag),
});
