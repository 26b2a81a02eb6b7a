import { defineCommand, SELECTED } from '../command.js';
import { Args, bad, inRanges, normalizeSet, overLimit, parseSeqSet, type SeqSet, type WorkLimits } from '../args.js';
import { flagLetter } from '../../../store/mailbox/flags.js';
import { parseHeaderBlock } from '../../../store/mailbox/mime.js';
import { isMailfleetError, MailfleetError } from '../../../errors.js';
import type { MessageRecord } from '../../../store/mailbox/index.js';
import type { Token } from '../parser.js';
import type { ImapSession } from '../session.js';
import type { SelectedMailbox } from '../selected.js';
import { TimeSlice } from '../time-slice.js';
import { enableCondstore, hasModseqKey, parseModseqKey } from '../condstore.js';

/** A parsed search key (RFC 3501 §6.4.4). */
type Key =
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
      if (/^[\d*:,]+$/.test(k)) return { op: 'set', set: parseSeqSet(k, a.limits.maxSequenceSetRanges), uid: false };
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

function parseSearch(t: readonly Token[], limits: WorkLimits): Key {
  const a = new Args(t, limits);
  const budget: KeyBudget = { left: limits.maxSearchKeys };
  const first = a.peek();
  if (first?.t === 'atom' && first.v.toUpperCase() === 'CHARSET') {
    a.next('CHARSET');
    const cs = a.astring('charset').toUpperCase();
    if (cs !== 'UTF-8' && cs !== 'US-ASCII') throw new MailfleetError('BAD_REQUEST', 'Unsupported charset', { details: { imapCode: 'BADCHARSET (UTF-8 US-ASCII)' } });
  }
  const keys: Key[] = [];
  while (a.left > 0) keys.push(parseKey(a, 0, budget));
  if (keys.length === 0) throw bad('Missing search key');
  return keys.length === 1 ? keys[0]! : { op: 'and', keys };
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
        return this.inSet(k, k.uid ? r.uid : seq);
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
      ranges = normalizeSet(k.set, max);
      this.ranges.set(k, ranges);
    }
    return inRanges(ranges, n);
  }
}

async function runSearch(s: ImapSession, key: Key, byUid: boolean) {
  const sel = s.selected!;
  const ev = new Evaluator(sel);
  const hits: number[] = [];
  // --- CONDSTORE: a MODSEQ key enables CONDSTORE and adds the hits' highest modseq (RFC 7162 §3.1.5).
  const modseqKey = hasModseqKey(key);
  if (modseqKey) enableCondstore(s);
  let highest = 0;
  // --- end CONDSTORE
  const slice = new TimeSlice();
  let expunged = false;
  for (let i = 0; i < sel.uids.length; i++) {
    await slice.pause();
    const uid = sel.uids[i]!;
    const r = sel.mailbox.byUid(uid) ?? sel.mailbox.expungedRecord(uid);
    if (!r) {
      expunged = true;
      continue;
    }
    try {
      if (await ev.test(key, r, i + 1)) {
        hits.push(byUid ? uid : i + 1);
        highest = Math.max(highest, r.modseq); // CONDSTORE
      }
    } catch (e) {
      // Expunged by another session between the index read and the file read: it matches nothing (Dovecot too).
      if (!isMailfleetError(e, 'NOT_FOUND')) throw e;
      expunged = true;
    }
  }
  const modseqSuffix = modseqKey && hits.length > 0 ? ` (MODSEQ ${highest})` : ''; // CONDSTORE
  await s.writeAsync(`* SEARCH${hits.length > 0 ? ' ' + hits.join(' ') : ''}${modseqSuffix}\r\n`);
  return expunged ? { code: 'EXPUNGEISSUED', text: 'SEARCH completed' } : { text: 'SEARCH completed' };
}

export const search = defineCommand({
  name: 'SEARCH',
  states: SELECTED,
  expungeAfter: false,
  parse: parseSearch,
  handler: (s, k) => runSearch(s, k, false),
});

export const uidSearch = defineCommand({
  name: 'UID SEARCH',
  states: SELECTED,
  parse: parseSearch,
  handler: (s, k) => runSearch(s, k, true),
});

