/**
 * One Maildir folder as IMAP and POP3 see it: stable UIDs, UIDVALIDITY, flags, sizes, internal dates.
 *
 * State lives in `mailfleet-uidlist` beside cur/ new/ tmp/ — the UID list and the index in one file,
 * written whole to a temp file and renamed, always under the folder's O_EXCL lock (lock.ts), so several
 * daemon processes on several nodes of a shared filesystem agree on UIDs. Every writer of cur/ holds
 * that lock and records cur/'s mtime in the list, so a reader only lists cur/ when someone outside the
 * daemon changed it; new/ (where deliveries land) is listed when its mtime moves.
 *
 * Under a stream of deliveries cur/ changes every few ms, so its mtime is nearly always "racy" (an
 * outside change in the same clock tick would not move it). Listing cur/ and taking the lock on every
 * refresh for that reason starved IMAP sessions (bench/imap-contention), so a racy mtime only asks for
 * a verifying full listing once per VERIFY_MS, and once more after the tick is safely past. Concurrent
 * refreshes in one process share one pass (refresh()).
 *
 * One Mailbox object per folder per process is shared by every session (registry.ts); sessions keep
 * only their own UID → sequence view and the modseq they last reported.
 */
import { createHash } from 'node:crypto';
import { link, mkdir, open, readFile, readdir, rename, stat, truncate, unlink, utimes, writeFile, copyFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { statSync, type Stats } from 'node:fs';
import { MailfleetError } from '../../errors.js';
import { flagsToLetters, isKeyword, keywordLetter, KEYWORDS_FILE, lettersToFlags, MAX_KEYWORDS, parseKeywords, serialiseKeywords, sortLetters } from './flags.js';
import { HeldLock } from './lock.js';
import { CHANGE_LOG_FILE, frameRecord, logHeader, parseLogHeader, readRecords } from './change-log.js';
import { storeError } from '../maildir/deliver.js';
import { addressSearchText } from './address.js';
import { sortKeysOf, type SortKeys } from './sort-keys.js';
import { previewOf } from './preview.js';
import { addUsage } from '../usage.js';
import { parseMime, envelopeOf, bodyStructureOf, headerValue, decodedHeader, DEFAULT_MIME_LIMITS, type ImapValue, type MimeLimits, type MimePart } from './mime.js';

export const UIDLIST_FILE = 'mailfleet-uidlist';
export const CACHE_FILE = 'mailfleet-cache';
/** Version of the cached summaries: lines of another version (older address parsing, no sort keys) are parsed again. */
const SUMMARY_FORMAT = 3;
const LOCK_FILE = 'mailfleet-uidlist.lock';
/** Directory mtimes closer to now than this may hide a same-tick change: treat them as unseen. */
const RACY_MS = 2000;
/**
 * While cur/'s recorded mtime is racy, a full cur/ listing (to catch a same-tick outside change) runs at
 * most this often per folder per process: files placed in cur/ by other tools show up this late at worst.
 */
const VERIFY_MS = 1000;
/** Lookups of a message file renamed under a reader (flag changes racing a FETCH) before giving up. */
const READ_RETRIES = 5;
/** Expunged records kept for sessions not yet told (Mailbox.expungedRecords). */
const EXPUNGED_KEPT = 1000;
/**
 * Expunged UIDs whose expunge modseq the UID list remembers for QRESYNC (RFC 7162 VANISHED); older ones
 * raise the history floor instead. 10,000 UIDs cost at most ~110 KB of list, usually far less (ranges).
 * The spec's imap.expungeHistoryUids (lib/spec/defaults.ts) has the same default.
 */
export const DEFAULT_EXPUNGE_HISTORY_UIDS = 10_000;
/**
 * Bytes the change log beside the UID list (change-log.ts) may reach before the next change rewrites the
 * list with every logged change folded in. A flag change is a record of ~100 bytes, so 64 KiB is some
 * 600 changes between rewrites of a list that costs ~80 bytes per message to write. The spec's
 * imap.changeLogBytes (lib/spec/defaults.ts) has the same default.
 */
export const DEFAULT_CHANGE_LOG_BYTES = 64 * 1024;
/**
 * How long a folder's lock is kept after a locked pass for the next pass of this process to reuse
 * (lock.ts HeldLock). The spec's imap.folderLockHoldMs (lib/spec/defaults.ts) has the same default.
 */
export const DEFAULT_FOLDER_LOCK_HOLD_MS = 20;

export interface MessageRecord {
  readonly uid: number;
  /** Maildir unique name, without the `:2,` info. */
  readonly base: string;
  /** Maildir info letters, sorted (`FS` = \Flagged \Seen). */
  letters: string;
  /** RFC822.SIZE: octets on the wire (bare LF counted as CRLF). */
  readonly size: number;
  /** INTERNALDATE, ms since the epoch. */
  readonly date: number;
  /** Bumped on every flag change; sessions report FETCH FLAGS for records newer than they saw. */
  modseq: number;
}

/** Per-message data computed once from the MIME tree and kept in the cache file. */
export interface MessageSummary {
  readonly envelope: ImapValue;
  readonly bodystructure: ImapValue;
  readonly body: ImapValue;
  /** Decoded header fields SEARCH looks at: from, to, cc, bcc, subject, date (raw). */
  readonly search: Readonly<Record<string, string>>;
  /** SORT and THREAD keys (RFC 5256): kept here so neither reads message files. */
  readonly sort: SortKeys;
  /** PREVIEW text (RFC 8970, preview.ts), added at the first FETCH PREVIEW; absent until then. */
  readonly preview?: string;
}

let uniqueCounter = 0;
const HOST = hostname().replace(/[/:]/g, '_');

export function uniqueName(): string {
  const now = Date.now();
  return `${Math.floor(now / 1000)}.M${(now % 1000) * 1000}P${process.pid}Q${++uniqueCounter}R${createHash('sha1').update(`${now}${Math.random()}`).digest('hex').slice(0, 8)}.${HOST}`;
}

const NAME_PARTS = /^(\d+)\.M(\d+)P(\d+)Q(\d+)/;

/**
 * Orders Maildir names by arrival: seconds, then (same process) its delivery counter, then microseconds;
 * names of other tools fall back to plain string order. A plain string sort put M99 after M100000.
 */
export function byArrival(a: string, b: string): number {
  const x = NAME_PARTS.exec(a);
  const y = NAME_PARTS.exec(b);
  if (x && y) {
    const d = Number(x[1]) - Number(y[1]);
    if (d !== 0) return d;
    if (x[3] === y[3]) return Number(x[4]) - Number(y[4]);
    const u = Number(x[2]) - Number(y[2]);
    if (u !== 0) return u;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

export function fileName(r: Pick<MessageRecord, 'base' | 'letters'>): string {
  return `${r.base}:2,${r.letters}`;
}

function splitName(name: string): { base: string; letters: string } {
  const i = name.lastIndexOf(':2,');
  return i < 0 ? { base: name, letters: '' } : { base: name.slice(0, i), letters: sortLetters(name.slice(i + 3)) };
}

/** Wire size and a quick check for bare LFs (stored messages are served with CRLF line ends). */
/** Octets on the wire (bare LF counted as CRLF). Scans with indexOf (memchr): a byte loop held the event loop ~90 ms per 20 MB. */
export function wireSize(buf: Buffer): number {
  let n = buf.length;
  for (let i = buf.indexOf(0x0a); i >= 0; i = buf.indexOf(0x0a, i + 1)) if (i === 0 || buf[i - 1] !== 0x0d) n++;
  return n;
}

/** wireSize() a megabyte per event-loop turn: an APPEND of 50 MB must not stall other sessions. */
export async function wireSizeSliced(buf: Buffer): Promise<number> {
  const SLICE = 1024 * 1024;
  if (buf.length <= SLICE) return wireSize(buf);
  let n = 0;
  for (let off = 0; off < buf.length; off += SLICE) {
    const end = Math.min(off + SLICE, buf.length);
    n += wireSize(buf.subarray(off, end));
    // A CRLF split across two slices was counted as a bare LF.
    if (off > 0 && buf[off] === 0x0a && buf[off - 1] === 0x0d) n--;
    await new Promise<void>((r) => setImmediate(r));
  }
  return n;
}

export function toCrlf(buf: Buffer): Buffer {
  const size = wireSize(buf);
  if (size === buf.length) return buf;
  const out = Buffer.allocUnsafe(size);
  let o = 0;
  let from = 0;
  for (let i = buf.indexOf(0x0a); i >= 0; i = buf.indexOf(0x0a, i + 1)) {
    if (i > 0 && buf[i - 1] === 0x0d) continue;
    o += buf.copy(out, o, from, i);
    out[o++] = 0x0d;
    from = i;
  }
  buf.copy(out, o, from);
  return out;
}

interface ListState {
  uidValidity: number;
  nextUid: number;
  modseq: number;
  curMtime: number;
  /**
   * UIDs from here up are \Recent: no read-write session has seen them yet (RFC 3501 §2.3.2). The first
   * session to SELECT the folder, or to see them arrive while it has it selected, claims them
   * (claimRecent), as Dovecot keeps first_recent_uid in its index.
   */
  firstRecent: number;
  messages: MessageRecord[];
  /** Expunge history (QRESYNC): see ExpungeHistory. */
  history: ExpungeHistory;
  /**
   * Names the change log that continues this list (the list's `L` line, the log's header): undefined for
   * a list written before the log existed, or by a daemon without it, which no log continues.
   */
  generation?: string;
}

/**
 * Which UIDs left the folder at which modseq, oldest first, for VANISHED (RFC 7162 §3.2.5, §3.2.6).
 * Every expunge with a modseq above `floor` is listed; below it, what left is unknown (trimmed to the
 * bound, or the list was written by a daemon without history), and callers fall back to "every UID the
 * client knows that is not here any more", which the RFC allows.
 */
export interface ExpungeHistory {
  floor: number;
  /** [modseq, uid], ascending by modseq (expunges are appended as they happen). */
  entries: Array<readonly [number, number]>;
}

/**
 * The history line of the UID list: `X1 M<list modseq> F<floor> <modseq>:<uid set> …`. Versioned on
 * its own line because daemons before it skip lines they do not know but drop them when they rewrite
 * the list; the M field ties it to the header it was written with, so a list rewritten by such a
 * daemon (header modseq moved on, or the line gone) reads as "history unknown up to the header".
 */
function serialiseHistory(modseq: number, h: ExpungeHistory): string {
  return `X1 M${modseq} F${h.floor}${historyGroups(h.entries)}\n`;
}

/** ` <modseq>:<uid set>` for each modseq of `entries[from…]`, in order. */
function groupsText(entries: ReadonlyArray<readonly [number, number]>, from: number): string {
  const groups: string[] = [];
  let i = from;
  while (i < entries.length) {
    const ms = entries[i]![0];
    const uids: number[] = [];
    for (; i < entries.length && entries[i]![0] === ms; i++) uids.push(entries[i]![1]);
    uids.sort((a, b) => a - b);
    groups.push(` ${ms}:${compactSet(uids)}`);
  }
  return groups.join('');
}

/**
 * The history's groups as last written, by the entry they start from: entries are only appended (each
 * expunge a group of its own modseq) or cut from the front, and the pairs are shared between the states
 * of successive passes. Every list write wrote the whole history (up to 10,000 UIDs) from scratch.
 */
const historyText = new WeakMap<readonly [number, number], { n: number; last: readonly [number, number]; text: string }>();

function historyGroups(entries: ReadonlyArray<readonly [number, number]>): string {
  const first = entries[0];
  if (first === undefined) return '';
  const c = historyText.get(first);
  let text: string;
  if (c && c.n === entries.length && entries[c.n - 1] === c.last) text = c.text;
  // Appended since: new groups after the cached ones (a new expunge has a modseq of its own).
  else if (c && c.n < entries.length && entries[c.n - 1] === c.last && entries[c.n]![0] !== c.last[0]) text = c.text + groupsText(entries, c.n);
  else text = groupsText(entries, 0);
  historyText.set(first, { n: entries.length, last: entries[entries.length - 1]!, text });
  return text;
}

/** Entries a history line may expand to when read (far above any configured bound). */
const MAX_HISTORY_PARSE = 1_000_000;

function parseHistory(line: string | undefined, modseq: number): ExpungeHistory {
  const unknown: ExpungeHistory = { floor: modseq, entries: [] };
  if (!line?.startsWith('X1 ')) return unknown;
  const parts = line.split(' ');
  if (parts[1] !== `M${modseq}` || !parts[2]?.startsWith('F')) return unknown;
  const floor = Number(parts[2].slice(1));
  if (!Number.isSafeInteger(floor)) return unknown;
  const entries: Array<readonly [number, number]> = [];
  for (const g of parts.slice(3)) {
    const c = g.indexOf(':');
    const ms = Number(g.slice(0, c));
    if (c <= 0 || !Number.isSafeInteger(ms)) return unknown;
    for (const r of g.slice(c + 1).split(',')) {
      const d = r.indexOf('-');
      const a = Number(d < 0 ? r : r.slice(0, d));
      const b = d < 0 ? a : Number(r.slice(d + 1));
      // A damaged range must not expand into millions of entries: the history is just unknown then.
      if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || b < a || entries.length + b - a > MAX_HISTORY_PARSE) return unknown;
      for (let u = a; u <= b; u++) entries.push([ms, u]);
    }
  }
  return { floor, entries };
}

/** "3,5-9" (a dash, not IMAP's colon, which separates the modseq in the history line). */
function compactSet(sorted: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    out.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return out.join(',');
}

/** Notes UIDs expunged at `modseq` and trims the history to `max` UIDs (the floor rises past what goes). */
function recordExpunged(h: ExpungeHistory, uids: readonly number[], modseq: number, max: number): void {
  for (const u of uids) h.entries.push([modseq, u]);
  if (h.entries.length <= max) return;
  const drop = h.entries.length - max;
  // The floor is the modseq up to which history is incomplete: the newest modseq dropped.
  h.floor = Math.max(h.floor, h.entries[drop - 1]![0]);
  // Entries of that modseq left behind would claim a completeness the floor now denies: drop them too.
  let cut = drop;
  while (cut < h.entries.length && h.entries[cut]![0] <= h.floor) cut++;
  h.entries.splice(0, cut);
}

function parseList(text: string): ListState | undefined {
  const lines = text.split('\n');
  // R (first recent UID) came later: a list without it has nothing recent.
  const head = /^MF1 V(\d+) N(\d+) M(\d+) C(-?[\d.]+)(?: R(\d+))?$/.exec(lines[0] ?? '');
  if (!head) return undefined;
  const messages: MessageRecord[] = [];
  let historyLine: string | undefined;
  let generationLine: string | undefined;
  for (let i = 1; i < lines.length; i++) {
    if (lines[i]!.startsWith('X')) {
      historyLine = lines[i];
      continue;
    }
    if (lines[i]!.startsWith('L')) {
      generationLine = lines[i];
      continue;
    }
    const m = /^(\d+) (\d+) (\d+) (\d+) (.+)$/.exec(lines[i]!);
    if (!m) continue;
    const { base, letters } = splitName(m[5]!);
    messages.push({ uid: Number(m[1]), modseq: Number(m[2]), size: Number(m[3]), date: Number(m[4]), base, letters });
  }
  messages.sort((a, b) => a.uid - b.uid);
  const nextUid = Number(head[2]);
  const modseq = Number(head[3]);
  const generation = generationLine?.split(' ')[0]!.slice(1) || undefined;
  return { uidValidity: Number(head[1]), nextUid, modseq, curMtime: Number(head[4]), firstRecent: head[5] === undefined ? nextUid : Number(head[5]), messages, history: parseHistory(historyLine, modseq), generation };
}

/**
 * Each record's list line, kept on the record while it is unchanged: every flag change or expunge
 * rewrites the whole list, and re-formatting hundreds of unchanged lines each time showed in the
 * profile. Non-enumerable, so the `{ ...r, letters }` copy made on a change does not inherit it.
 */
const LINE = Symbol('listLine');
type Lined = MessageRecord & { [LINE]?: { letters: string; modseq: number; line: string } };

function listLine(r: Lined): string {
  const c = r[LINE];
  if (c && c.letters === r.letters && c.modseq === r.modseq) return c.line;
  const line = `${r.uid} ${r.modseq} ${r.size} ${r.date} ${fileName(r)}\n`;
  Object.defineProperty(r, LINE, { value: { letters: r.letters, modseq: r.modseq, line }, writable: true });
  return line;
}

/** Records per cached block of list lines (ListBlocks). */
const BLOCK_RECORDS = 64;

/**
 * The record lines of the list in blocks of BLOCK_RECORDS, each joined once and kept while its records
 * are the same objects with the same flags and modseq: a change touches one record (or appends at the
 * end), and joining 500 cached lines on every change was still the list write's largest cost.
 */
type ListBlocks = Array<{ recs: MessageRecord[]; letters: string[]; modseqs: number[]; text: string } | undefined>;

function serialiseList(s: ListState, blocks: ListBlocks = []): string {
  // The header keeps its old shape: daemons before the history line must still parse it.
  const parts = [`MF1 V${s.uidValidity} N${s.nextUid} M${s.modseq} C${s.curMtime} R${s.firstRecent}\n`, serialiseHistory(s.modseq, s.history)];
  // Daemons before the change log skip this line (it matches no record) and drop it when they rewrite.
  if (s.generation !== undefined) parts.push(`L${s.generation}\n`);
  const n = Math.ceil(s.messages.length / BLOCK_RECORDS);
  blocks.length = n;
  for (let b = 0; b < n; b++) {
    const from = b * BLOCK_RECORDS;
    const to = Math.min(from + BLOCK_RECORDS, s.messages.length);
    const cached = blocks[b];
    let same = cached !== undefined && cached.recs.length === to - from;
    for (let i = from; same && i < to; i++) {
      const r = s.messages[i]!;
      same = cached!.recs[i - from] === r && cached!.letters[i - from] === r.letters && cached!.modseqs[i - from] === r.modseq;
    }
    if (same) {
      parts.push(cached!.text);
      continue;
    }
    const recs = s.messages.slice(from, to);
    const text = recs.map((r) => listLine(r)).join('');
    blocks[b] = { recs, letters: recs.map((r) => r.letters), modseqs: recs.map((r) => r.modseq), text };
    parts.push(text);
  }
  return parts.join('');
}

/**
 * One change-log record (change-log.ts): what a locked pass changed, from the state it started from
 * (`before`, sorted by UID, at modseq `beforeModseq`) to `s`. Records are compared by identity: a change
 * replaces a record object, an unchanged one is carried over as it was.
 */
function serialiseChange(before: readonly MessageRecord[], beforeModseq: number, s: ListState): string {
  const removed: number[] = [];
  const upserts: string[] = [];
  let j = 0;
  for (const r of s.messages) {
    while (j < before.length && before[j]!.uid < r.uid) removed.push(before[j++]!.uid);
    if (j < before.length && before[j]!.uid === r.uid) {
      if (before[j] !== r) upserts.push(listLine(r));
      j++;
    } else upserts.push(listLine(r));
  }
  while (j < before.length) removed.push(before[j++]!.uid);
  const out = [`H V${s.uidValidity} N${s.nextUid} M${s.modseq} C${s.curMtime} R${s.firstRecent} F${s.history.floor}\n`];
  if (removed.length > 0) out.push(`E ${compactSet(removed)}\n`);
  // Entries of this pass: expunges take modseqs above the one the pass started from.
  // Entries are in modseq order: walk back from the end (the history holds up to 10,000).
  const h = s.history.entries;
  let from = h.length;
  while (from > 0 && h[from - 1]![0] > beforeModseq) from--;
  const added = h.slice(from);
  if (added.length > 0) out.push(serialiseHistory(0, { floor: 0, entries: added }).replace(/^X1 M0 F0/, 'X'));
  out.push(...upserts);
  return out.join('');
}

function parseCompactSet(text: string): number[] | undefined {
  const out: number[] = [];
  for (const r of text.split(',')) {
    const d = r.indexOf('-');
    const a = Number(d < 0 ? r : r.slice(0, d));
    const b = d < 0 ? a : Number(r.slice(d + 1));
    if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || b < a || b - a > MAX_HISTORY_PARSE) return undefined;
    for (let u = a; u <= b; u++) out.push(u);
  }
  return out;
}

/**
 * Applies one change-log record to `s` (serialiseChange's inverse). False when the record does not fit
 * (another UIDVALIDITY, a line it cannot read): the caller stops there, as at a torn record.
 */
function applyChange(s: ListState, payload: string): boolean {
  const lines = payload.split('\n');
  const h = lines[0]!.split(' ');
  if (h.length !== 7 || h[0] !== 'H' || h[1] !== `V${s.uidValidity}`) return false;
  const [nextUid, modseq, curMtime, firstRecent, floor] = h.slice(2).map((f) => Number(f.slice(1)));
  if (![nextUid, modseq, curMtime, firstRecent, floor].every((x) => Number.isFinite(x))) return false;
  let messages = s.messages;
  const added: Array<readonly [number, number]> = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') continue;
    if (line.startsWith('E ')) {
      const gone = parseCompactSet(line.slice(2));
      if (!gone) return false;
      const set = new Set(gone);
      messages = messages.filter((r) => !set.has(r.uid));
    } else if (line.startsWith('X ')) {
      for (const g of line.slice(2).split(' ')) {
        const c = g.indexOf(':');
        const ms = Number(g.slice(0, c));
        const uids = c > 0 ? parseCompactSet(g.slice(c + 1)) : undefined;
        if (!uids || !Number.isSafeInteger(ms)) return false;
        for (const u of uids) added.push([ms, u]);
      }
    } else {
      const m = /^(\d+) (\d+) (\d+) (\d+) (.+)$/.exec(line);
      if (!m) return false;
      const { base, letters } = splitName(m[5]!);
      const rec: MessageRecord = { uid: Number(m[1]), modseq: Number(m[2]), size: Number(m[3]), date: Number(m[4]), base, letters };
      if (messages === s.messages) messages = [...messages];
      // Binary search: appends land at the end, flag changes replace in place.
      let lo = 0;
      let hi = messages.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (messages[mid]!.uid < rec.uid) lo = mid + 1;
        else hi = mid;
      }
      if (messages[lo]?.uid === rec.uid) messages[lo] = rec;
      else messages.splice(lo, 0, rec);
    }
  }
  added.sort((a, b) => a[0] - b[0]);
  s.messages = messages;
  s.nextUid = nextUid!;
  s.modseq = modseq!;
  s.curMtime = curMtime!;
  s.firstRecent = firstRecent!;
  // What recordExpunged() left on the writer's side: every entry above the floor it ended at.
  s.history = { floor: floor!, entries: [...s.history.entries, ...added].filter((e) => e[0] > floor!) };
  return true;
}

/**
 * The folder state on disk as a new reader would have it (UID list plus its change log), without the
 * lock and without looking at cur/ or new/: what has been acknowledged. Undefined without a list.
 */
export async function readListState(dir: string): Promise<Omit<ListState, 'generation'> | undefined> {
  const text = await readFile(join(dir, UIDLIST_FILE), 'utf8').catch(() => undefined);
  const s = text === undefined ? undefined : parseList(text);
  if (!s || s.generation === undefined) return s;
  const buf = await readFile(join(dir, CHANGE_LOG_FILE)).catch(() => undefined);
  const h = buf && parseLogHeader(buf);
  if (!buf || !h || h.generation !== s.generation) return s;
  for (const r of readRecords(buf.subarray(h.end), h.end)) if (!applyChange(s, r.payload)) break;
  return s;
}

/**
 * A metadata check (the UID list, new/, cur/): every IMAP command makes up to three. Synchronous on
 * purpose: an async stat costs ~10x the CPU of the stat itself (a thread-pool round trip, a promise),
 * and under bench/imap-stress these checks were the daemon's largest single cost. A stat of a hot inode
 * answers from the kernel's cache (FUSE caches attributes too); file contents stay asynchronous.
 */
function statOrUndefined(p: string): Stats | undefined {
  return statSync(p, { throwIfNoEntry: false });
}

export interface MailboxOptions {
  /** Folder name as IMAP shows it (Unicode), e.g. 'INBOX' or 'Sent'. */
  readonly name: string;
  /** The Maildir folder directory (holds cur/ new/ tmp/). */
  readonly dir: string;
  /**
   * MIME structure worth parsing for ENVELOPE / BODYSTRUCTURE; a message over it is shown as one part.
   * @default DEFAULT_MIME_LIMITS (1000 parts, depth 32, 1 MiB headers)
   */
  readonly mimeLimits?: MimeLimits;
  /**
   * Gives a new folder (or one whose list was lost) its UIDVALIDITY. The MailStore passes the user's
   * counter (uidvalidity.ts), so a folder deleted and created again never gets a value it had before.
   * @default - the current time in seconds
   */
  readonly newUidValidity?: () => Promise<number>;
  /**
   * The user's Maildir, whose usage file (lib/store/usage.ts) this folder's APPEND, COPY and EXPUNGE
   * add their deltas to.
   * @default - no usage accounting
   */
  readonly usageDir?: string;
  /**
   * Expunged UIDs whose expunge modseq the UID list keeps for QRESYNC (VANISHED); past it the oldest go
   * and the history floor rises (clients older than it get every missing UID they know as VANISHED).
   * @default DEFAULT_EXPUNGE_HISTORY_UIDS (10,000)
   */
  readonly expungeHistoryUids?: number;
  /**
   * Bytes the change log beside the UID list may reach before a change rewrites the list instead
   * (change-log.ts); 0 writes the whole list on every change and keeps no log (what daemons before the
   * log did: for a shared mail root while nodes of an older version still run).
   * @default DEFAULT_CHANGE_LOG_BYTES (64 KiB)
   */
  readonly changeLogBytes?: number;
  /**
   * Milliseconds the folder lock is kept after a locked pass, so the next pass (a group-commit batch
   * queued behind it, the next STORE or EXPUNGE of a session) runs without taking it again; 0 releases it
   * after every pass. Other processes and nodes wait at most this long more for it.
   * @default DEFAULT_FOLDER_LOCK_HOLD_MS (20)
   */
  readonly lockHoldMs?: number;
}

export class Mailbox {
  readonly name: string;
  readonly dir: string;
  readonly mimeLimits: MimeLimits;
  readonly usageDir?: string;
  uidValidity = 0;
  nextUid = 1;
  modseq = 1;
  /** UIDs from here up are \Recent and not claimed by any session yet (ListState.firstRecent). */
  firstRecent = 1;
  /** Sorted by UID. Shared by every session of this process: never mutate from outside. */
  messages: MessageRecord[] = [];
  /** Increments on every visible change; watchers compare it. */
  version = 0;
  private listStamp = '';
  /**
   * The last loadList() found no UID list: a new folder, or one deleted and created again under the same
   * name while this object was held. Its state starts over (new UIDVALIDITY) instead of carrying ours.
   */
  private listMissing = false;
  private curMtime = -1;
  private newSeen = -1;
  /** new/'s mtime when scan() last listed it empty, once that mtime was past the racy window; else -1. */
  private newEmpty = -1;
  private queue: Promise<unknown> = Promise.resolve();
  /** A refresh queued but not started yet: later callers join it instead of queueing another. */
  private pendingRefresh?: Promise<boolean>;
  /** When this process last started a full listing of cur/ (ms); it covers outside changes made before. */
  private verifiedAt = -Infinity;
  private summaries?: Map<number, MessageSummary>;
  private summaryLoad?: Promise<Map<number, MessageSummary>>;
  /** Changes waiting for the next locked pass (mutate()). */
  private batch?: Array<{ run: (s: ListState) => Promise<void>; settle: (passError?: unknown) => void }>;
  /** Keyword table (index 0 = letter a) from KEYWORDS_FILE; reloaded whenever the UID list is. */
  keywords: string[] = [];
  private keywordsStamp = '';

  constructor(opts: MailboxOptions) {
    this.name = opts.name;
    this.dir = opts.dir;
    this.mimeLimits = opts.mimeLimits ?? DEFAULT_MIME_LIMITS;
    this.newUidValidity = opts.newUidValidity ?? (async () => Math.floor(Date.now() / 1000));
    this.usageDir = opts.usageDir;
    this.expungeHistoryUids = opts.expungeHistoryUids ?? DEFAULT_EXPUNGE_HISTORY_UIDS;
    this.changeLogBytes = opts.changeLogBytes ?? DEFAULT_CHANGE_LOG_BYTES;
    this.lockHoldMs = opts.lockHoldMs ?? DEFAULT_FOLDER_LOCK_HOLD_MS;
    this.folderLock = new HeldLock(join(this.dir, LOCK_FILE), { holdMs: this.lockHoldMs });
  }

  /** MailboxOptions.lockHoldMs; the user's usage-file lock is kept as long (usage.ts). */
  private readonly lockHoldMs: number;

  /** Cached blocks of the list's record lines (serialiseList). */
  private readonly listBlocks: ListBlocks = [];

  /** The folder's O_EXCL lock, kept a moment between passes (lockHoldMs). */
  private readonly folderLock: HeldLock;

  /**
   * Gives up the folder lock if it is kept between passes: before the folder's directory is renamed or
   * removed (the lock file would go with it, or a new folder's lock be unlinked by our late release).
   */
  releaseLock(): Promise<void> {
    return this.folderLock.release();
  }

  private readonly changeLogBytes: number;
  /** The list's generation (ListState.generation) as last read or written. */
  private generation?: string;
  /** The change log as last examined: stat key, inode, offset after the last whole record applied, size. */
  private logKey = '';
  private logIno?: number;
  private logOffset = 0;
  private logSize = 0;

  private readonly expungeHistoryUids: number;
  /** Expunge history as of the last list read or write (ExpungeHistory); shared with every node via the list. */
  private history: ExpungeHistory = { floor: 0, entries: [] };

  /**
   * UIDs expunged after `modseq` (RFC 7162 VANISHED (EARLIER)), ascending; undefined when the history
   * does not reach back that far (modseq below the floor): the caller then reports every UID the client
   * knows that is gone.
   */
  vanishedSince(modseq: number): number[] | undefined {
    if (modseq < this.history.floor) return undefined;
    const out: number[] = [];
    const e = this.history.entries;
    for (let i = e.length - 1; i >= 0 && e[i]![0] > modseq; i--) out.push(e[i]![1]);
    return out.sort((a, b) => a - b);
  }

  private readonly newUidValidity: () => Promise<number>;

  /** Messages no session has claimed as \Recent yet (STATUS RECENT, EXAMINE's RECENT). */
  get unclaimedRecent(): number {
    let n = 0;
    for (let i = this.messages.length - 1; i >= 0 && this.messages[i]!.uid >= this.firstRecent; i--) n++;
    return n;
  }

  /**
   * Claims the unclaimed \Recent messages for one read-write session and returns their UIDs: the first
   * session to look gets them, every later one sees them as not recent (RFC 3501 §2.3.2, Dovecot's
   * behaviour). Persisted in the UID list, so sessions on other nodes agree. A group-committed change
   * (mutate()): under a mixed load nearly every SELECT claims the APPEND of another session, and a pass
   * of its own (lock, scan, list write, fsync) per SELECT was the costliest thing SELECT did.
   */
  claimRecent(): Promise<number[]> {
    if (this.firstRecent >= this.nextUid) return Promise.resolve([]);
    return this.mutate(async (s) => {
      const from = s.firstRecent;
      s.firstRecent = s.nextUid;
      return s.messages.filter((r) => r.uid >= from).map((r) => r.uid);
    });
  }

  /** Adds a done change to the user's usage; a failure here must not undo or fail it (recalc repairs drift). */
  private async account(bytes: number, messages: number): Promise<void> {
    if (this.usageDir === undefined || messages === 0) return;
    await addUsage(this.usageDir, { bytes, messages }, this.lockHoldMs).catch(() => undefined);
  }

  get exists(): number {
    return this.messages.length;
  }

  /** Serialises work on this folder inside the process (the file lock covers other processes). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }

  /**
   * Brings the in-memory state up to date with disk; returns true when something visible changed.
   * Callers that arrive while a refresh waits in the queue share it: it starts after they asked, so it
   * sees what they would have seen, and a burst of sessions or delivery events costs one pass.
   */
  refresh(): Promise<boolean> {
    if (this.pendingRefresh) return this.pendingRefresh;
    const run = this.serial(async () => {
      this.pendingRefresh = undefined; // started: whoever asks from now on needs a later pass
      const before = this.version;
      const dirty = await this.loadList();
      if (dirty || this.uidValidity === 0 || (await this.newHasMail()) || (await this.curChanged())) {
        await this.locked(async () => {});
      }
      return this.version !== before;
    });
    this.pendingRefresh = run;
    return run;
  }

  /**
   * Re-reads the list when another process rewrote it, and applies change-log records appended since the
   * last look (only those: the offset read to is kept). Returns true if the folder looks out of sync.
   */
  private async loadList(): Promise<boolean> {
    const p = join(this.dir, UIDLIST_FILE);
    const st = statOrUndefined(p);
    this.listMissing = !st;
    if (!st) {
      if (!statOrUndefined(join(this.dir, 'cur'))) throw new MailfleetError('MAILBOX_NOT_FOUND', `no such mailbox: ${this.name}`);
      return true;
    }
    const stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    const logPath = join(this.dir, CHANGE_LOG_FILE);
    const logSt = statOrUndefined(logPath);
    const logKey = logSt ? `${logSt.ino}:${logSt.size}:${logSt.mtimeMs}` : '';
    if (stamp === this.listStamp && logKey === this.logKey) return false;
    // Another process changed the folder: a keyword it defined comes with the flag change it made.
    await this.loadKeywords();
    if (stamp === this.listStamp && logSt && this.logIno === logSt.ino && logSt.size >= this.logOffset) {
      // The log grew (or a torn tail sits past what we applied): read only what is new.
      this.logKey = logKey;
      this.logSize = logSt.size;
      if (logSt.size === this.logOffset) return false;
      const fh = await open(logPath, 'r').catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
      });
      if (!fh) {
        // Removed since the stat: the list was rewritten with it folded in. Read that list.
        this.listStamp = '';
        return this.loadList();
      }
      let buf: Buffer;
      try {
        buf = Buffer.allocUnsafe(logSt.size - this.logOffset);
        const { bytesRead } = await fh.read(buf, 0, buf.length, this.logOffset);
        buf = buf.subarray(0, bytesRead);
      } finally {
        await fh.close();
      }
      const records = readRecords(buf, this.logOffset);
      if (records.length === 0) return false;
      const s = this.snapshot();
      for (const r of records) {
        if (!applyChange(s, r.payload)) break;
        this.logOffset = r.end;
      }
      this.apply(s);
      return false;
    }
    const parsed = parseList(await readFile(p, 'utf8'));
    if (!parsed) {
      // Damaged: rebuilt under the lock, keeping UIDVALIDITY if we had it, and written whole (no log
      // continues a list that does not parse).
      this.generation = undefined;
      return true;
    }
    this.logIno = undefined;
    this.logOffset = 0;
    this.logSize = 0;
    if (logSt && parsed.generation !== undefined) {
      const buf = await readFile(logPath).catch(() => undefined);
      const h = buf && parseLogHeader(buf);
      // A log of another generation was left by a rewrite of the list (its records are in the list).
      if (buf && h && h.generation === parsed.generation) {
        let at = h.end;
        for (const r of readRecords(buf.subarray(h.end), h.end)) {
          if (!applyChange(parsed, r.payload)) break;
          at = r.end;
        }
        this.logIno = logSt.ino;
        this.logOffset = at;
        this.logSize = buf.length;
      }
    }
    this.logKey = logKey;
    this.apply(parsed);
    this.listStamp = stamp;
    return false;
  }

  /** The in-memory state as a ListState a change can work on (copies of what a change mutates). */
  private snapshot(): ListState {
    return {
      uidValidity: this.uidValidity,
      nextUid: this.nextUid,
      modseq: this.modseq,
      curMtime: this.curMtime,
      firstRecent: this.firstRecent,
      messages: [...this.messages],
      history: { floor: this.history.floor, entries: [...this.history.entries] },
      generation: this.generation,
    };
  }

  /**
   * Records that left `messages` lately (expunged here or on another node), newest last, at most
   * EXPUNGED_KEPT: a session that has not been told of the EXPUNGE yet still sees them in its view (RFC
   * 2180 §4.1): their flags for FETCH and SEARCH, NIL for their content.
   */
  private readonly expungedRecords = new Map<number, MessageRecord>();

  /** A record expunged lately that a session's view may still hold (see expungedRecords). */
  expungedRecord(uid: number): MessageRecord | undefined {
    return this.expungedRecords.get(uid);
  }

  /** Notes the records of `before` missing from `after` (both sorted by UID): one merge walk. */
  private noteExpunged(before: readonly MessageRecord[], after: readonly MessageRecord[]): void {
    let j = 0;
    for (const r of before) {
      while (j < after.length && after[j]!.uid < r.uid) j++;
      if (j < after.length && after[j]!.uid === r.uid) continue;
      this.expungedRecords.set(r.uid, r);
      if (this.expungedRecords.size > EXPUNGED_KEPT) this.expungedRecords.delete(this.expungedRecords.keys().next().value!);
    }
  }

  private apply(s: ListState): void {
    // Deleted and recreated (here or on another node): UIDs restart, so cached summaries are wrong.
    if (this.uidValidity !== 0 && s.uidValidity !== this.uidValidity) {
      this.summaries = undefined;
      this.summaryLoad = undefined;
    }
    const changed =
      s.uidValidity !== this.uidValidity ||
      s.modseq !== this.modseq ||
      s.messages.length !== this.messages.length ||
      s.nextUid !== this.nextUid;
    this.firstRecent = s.firstRecent;
    if (s.uidValidity !== this.uidValidity) this.expungedRecords.clear();
    else if (s.messages.length !== this.messages.length || s.nextUid !== this.nextUid) this.noteExpunged(this.messages, s.messages);
    this.uidValidity = s.uidValidity;
    this.nextUid = s.nextUid;
    this.modseq = s.modseq;
    this.curMtime = s.curMtime;
    this.messages = s.messages;
    this.history = s.history;
    this.generation = s.generation;
    if (changed) this.version++;
  }

  private async loadKeywords(): Promise<void> {
    const p = join(this.dir, KEYWORDS_FILE);
    const st = await statOrUndefined(p);
    const stamp = st ? `${st.ino}:${st.size}:${st.mtimeMs}` : '';
    if (stamp === this.keywordsStamp) return;
    this.keywords = st ? parseKeywords(await readFile(p, 'utf8').catch(() => '')) : [];
    this.keywordsStamp = stamp;
  }

  /** IMAP flags of a message: system flags and this folder's keywords. */
  flagsOf(r: Pick<MessageRecord, 'letters'>): string[] {
    return lettersToFlags(r.letters, this.keywords);
  }

  /** The letter of a keyword here, if the folder has it (SEARCH KEYWORD). */
  keywordLetter(keyword: string): string | undefined {
    return keywordLetter(keyword, this.keywords);
  }

  /**
   * Maildir letters for IMAP flags. With `define`, keywords the folder lacks get the next free letter
   * (under the folder lock, so two nodes never give one letter two meanings); past 26 they are not stored.
   */
  async lettersFor(flags: readonly string[], define: boolean): Promise<string> {
    const missing = flags.filter((f) => isKeyword(f) && keywordLetter(f, this.keywords) === undefined);
    if (define && missing.length > 0)
      await this.serial(() =>
        this.folderLock.run(async () => {
          await this.loadKeywords();
          const table = [...this.keywords];
          let added = false;
          for (const k of missing) {
            if (keywordLetter(k, table) !== undefined) continue;
            let i = 0;
            while (i < MAX_KEYWORDS && table[i] !== undefined) i++;
            if (i >= MAX_KEYWORDS) break;
            table[i] = k;
            added = true;
          }
          if (!added) return;
          const p = join(this.dir, KEYWORDS_FILE);
          const tmp = `${p}.${process.pid}.${Date.now()}.tmp`;
          await writeFile(tmp, serialiseKeywords(table), { mode: 0o600 });
          await rename(tmp, p);
          this.keywordsStamp = '';
          await this.loadKeywords();
        }),
      );
    return flagsToLetters(flags, this.keywords);
  }

  private async newHasMail(): Promise<boolean> {
    const st = await statOrUndefined(join(this.dir, 'new'));
    if (!st) return false;
    if (st.mtimeMs === this.newSeen) return false;
    const names = (await readdir(join(this.dir, 'new'))).filter((n) => !n.startsWith('.'));
    this.newSeen = Date.now() - st.mtimeMs < RACY_MS ? -1 : st.mtimeMs;
    return names.length > 0;
  }

  private async curChanged(): Promise<boolean> {
    const st = await statOrUndefined(join(this.dir, 'cur'));
    return st !== undefined && this.curNeedsListing(st.mtimeMs, this.curMtime);
  }

  /**
   * Whether cur/ (mtime `mtime`) may hold changes the list (which recorded `recorded`) lacks. A moved
   * mtime says so. An unmoved one can still hide an outside change made in the same clock tick as the
   * recorded one: our last full listing covers changes before `verifiedAt`, so once that is past the
   * racy window nothing can hide; before then, list again at most every VERIFY_MS.
   */
  private curNeedsListing(mtime: number, recorded: number): boolean {
    if (recorded === -1 || mtime !== recorded) return true;
    if (this.verifiedAt >= recorded + RACY_MS) return false;
    const now = Date.now();
    return now >= recorded + RACY_MS || now - this.verifiedAt >= VERIFY_MS;
  }

  /**
   * Runs `change` under the folder lock on a state that is in sync with disk (new/ moved into cur/,
   * cur/ reconciled when it changed behind our back), then writes the list if anything changed.
   */
  private async locked<T>(change: (s: ListState) => Promise<T>): Promise<T> {
    return this.folderLock.run(async () => {
      await this.loadList();
      // Also when there is no list yet (a folder from Dovecot has dovecot-keywords but no UID list of ours).
      await this.loadKeywords();
      const s: ListState = this.listMissing
        ? { uidValidity: 0, nextUid: 1, modseq: this.modseq + 1, curMtime: -1, firstRecent: 1, messages: [], history: { floor: 0, entries: [] } }
        : this.snapshot();
      const before = this.listMissing ? undefined : { messages: this.messages, modseq: this.modseq, uidValidity: this.uidValidity };
      let dirty = s.uidValidity === 0;
      if (s.uidValidity === 0) s.uidValidity = await this.newUidValidity();
      const firstRecent = s.firstRecent;
      dirty = (await this.scan(s)) || dirty;
      const modseqBefore = s.modseq;
      const result = await change(s);
      dirty = dirty || s.modseq !== modseqBefore || s.messages.length !== this.messages.length || s.nextUid !== this.nextUid || s.firstRecent !== firstRecent;
      const curSt = await statOrUndefined(join(this.dir, 'cur'));
      // Recorded even when racy: curNeedsListing() re-verifies such a value until its tick is past.
      const record = curSt?.mtimeMs ?? -1;
      if (dirty || record !== s.curMtime) {
        s.curMtime = record;
        // Appended to the change log while it continues this list and stays under its bound; else the
        // whole list is written (a new folder, a list of an older daemon, or the log grown past the bound).
        const change = before && before.uidValidity === s.uidValidity && s.generation !== undefined && this.changeLogBytes > 0 ? serialiseChange(before.messages, before.modseq, s) : undefined;
        const frame = change === undefined ? undefined : frameRecord(change);
        if (frame && (this.logIno === undefined ? 64 : this.logOffset) + frame.length <= this.changeLogBytes) await this.appendLog(frame, s.generation!);
        else await this.writeList(s);
      }
      this.apply(s);
      if (dirty) this.version++;
      return result;
    });
  }

  /**
   * Appends one record to the change log (creating it, with the list's generation, when there is none
   * that continues the list) and waits for it to be on disk. A torn record past the last whole one (a
   * writer killed mid-append: never acknowledged) is cut off first, so readers can reach what follows.
   */
  private async appendLog(frame: Buffer, generation: string): Promise<void> {
    const p = join(this.dir, CHANGE_LOG_FILE);
    if (this.logIno === undefined) {
      // None, or one of an older generation (left by a crash between a list rewrite and the log's removal).
      await unlink(p).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
      });
      const head = logHeader(generation);
      const fh = await open(p, 'wx', 0o600);
      try {
        await fh.writeFile(Buffer.concat([head, frame]));
        await fh.sync();
      } finally {
        await fh.close();
      }
      this.logOffset = head.length + frame.length;
    } else {
      if (this.logSize > this.logOffset) await truncate(p, this.logOffset);
      const fh = await open(p, 'a');
      try {
        await fh.writeFile(frame);
        await fh.datasync();
      } finally {
        await fh.close();
      }
      this.logOffset += frame.length;
    }
    const st = statSync(p);
    this.logIno = st.ino;
    this.logSize = st.size;
    this.logKey = `${st.ino}:${st.size}:${st.mtimeMs}`;
  }

  /** Writes the whole list with a new generation (any change log is folded in), then drops the log. */
  private async writeList(s: ListState): Promise<void> {
    s.generation = this.changeLogBytes > 0 ? createHash('sha1').update(`${HOST}${process.pid}${Date.now()}${Math.random()}`).digest('hex').slice(0, 12) : undefined;
    const p = join(this.dir, UIDLIST_FILE);
    const tmp = join(this.dir, `${UIDLIST_FILE}.${process.pid}.${Date.now()}.tmp`);
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(serialiseList(s, this.listBlocks));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, p);
    const st = statSync(p);
    this.listStamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    // Its records are in the list now; one left behind by a crash here names the old generation. The
    // locked pass stat'ed the log just before (loadList): without one there is nothing to remove.
    if (this.logKey !== '' || this.logIno !== undefined) await unlink(join(this.dir, CHANGE_LOG_FILE)).catch(() => undefined);
    this.logIno = undefined;
    this.logOffset = 0;
    this.logSize = 0;
    this.logKey = '';
  }

  /** Moves new/ into cur/ and reconciles cur/ with the list. Returns true if the list changed. */
  private async scan(s: ListState): Promise<boolean> {
    let dirty = false;
    const newDir = join(this.dir, 'new');
    const curDir = join(this.dir, 'cur');
    const arrived: Array<{ base: string; letters: string; file: string }> = [];
    const before = await statOrUndefined(curDir);
    // cur/ untouched since the list was written: arrivals can be added without listing cur/.
    const inSync = before !== undefined && !this.curNeedsListing(before.mtimeMs, s.curMtime);
    // new/ listed empty at this mtime, long enough ago that a later arrival would have moved it: nothing
    // to move, and no listing (one file operation less in every locked pass).
    const newSt = statOrUndefined(newDir);
    const newNames = newSt && newSt.mtimeMs === this.newEmpty ? [] : (await readdir(newDir).catch(() => [] as string[])).filter((n) => !n.startsWith('.'));
    this.newEmpty = newSt && newNames.length === 0 && Date.now() - newSt.mtimeMs >= RACY_MS ? newSt.mtimeMs : -1;
    // Oldest first, so UIDs follow arrival order (readdir order is the file system's hash order).
    for (const n of newNames.sort(byArrival)) {
      const { base, letters } = splitName(n);
      const target = `${base}:2,${letters}`;
      try {
        await rename(join(newDir, n), join(curDir, target));
        arrived.push({ base, letters, file: target });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
    if (inSync) {
      for (const f of arrived) {
        const rec = await this.recordFor(f.file, f.base, f.letters, s);
        if (rec) {
          s.messages.push(rec);
          dirty = true;
        }
      }
    } else if (before) {
      const onDisk = new Map<string, string>();
      this.verifiedAt = Date.now();
      for (const n of await readdir(curDir)) if (!n.startsWith('.')) onDisk.set(splitName(n).base, n);
      const kept: MessageRecord[] = [];
      const gone: number[] = [];
      for (const r of s.messages) {
        const n = onDisk.get(r.base);
        if (n === undefined) {
          dirty = true; // removed behind our back
          gone.push(r.uid);
          continue;
        }
        onDisk.delete(r.base);
        const letters = splitName(n).letters;
        if (letters !== r.letters) {
          kept.push({ ...r, letters, modseq: ++s.modseq });
          dirty = true;
        } else kept.push(r);
      }
      // Whatever is left is new to the list: deliveries just moved, or files placed by other tools.
      const fresh = [...onDisk.values()].map((file) => ({ ...splitName(file), file }));
      fresh.sort((a, b) => byArrival(a.base, b.base));
      for (const f of fresh) {
        const rec = await this.recordFor(f.file, f.base, f.letters, s);
        if (rec) {
          kept.push(rec);
          dirty = true;
        }
      }
      // Removed by another tool: an expunge like ours, with its own modseq, so QRESYNC clients learn of it.
      if (gone.length > 0) recordExpunged(s.history, gone, ++s.modseq, this.expungeHistoryUids);
      s.messages = kept;
    }
    return dirty;
  }

  private async recordFor(file: string, base: string, letters: string, s: ListState): Promise<MessageRecord | undefined> {
    try {
      const p = join(this.dir, 'cur', file);
      const [st, buf] = await Promise.all([stat(p), readFile(p)]);
      return { uid: s.nextUid++, base, letters, size: wireSize(buf), date: Math.floor(st.mtimeMs), modseq: ++s.modseq };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  /** Index of the record with this UID in `messages`, or -1. */
  indexOfUid(uid: number): number {
    let lo = 0;
    let hi = this.messages.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const u = this.messages[mid]!.uid;
      if (u === uid) return mid;
      if (u < uid) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  byUid(uid: number): MessageRecord | undefined {
    const i = this.indexOfUid(uid);
    return i < 0 ? undefined : this.messages[i];
  }

  path(r: MessageRecord): string {
    return join(this.dir, 'cur', fileName(r));
  }

  /**
   * The message as stored, with CRLF line ends. Another session or node may rename the file (a flag
   * change) or remove it (expunge) between the index read and the open: the file is looked up again by
   * its base name — through the current index first, then cur/ itself — a few times before the message
   * counts as expunged (NOT_FOUND). A rename racing each lookup is what made FETCH fail with UNAVAILABLE.
   */
  async read(r: MessageRecord): Promise<Buffer> {
    let name = fileName(r);
    for (let attempt = 0; ; attempt++) {
      try {
        const buf = await readFile(join(this.dir, 'cur', name));
        // The recorded wire size counts each bare LF as two octets: equal lengths mean there is none, and
        // the 20 MB scan for them (which held the event loop) is skipped.
        return buf.length === r.size ? buf : toCrlf(buf);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      if (attempt >= READ_RETRIES) throw new MailfleetError('NOT_FOUND', `message ${r.uid} has been expunged`);
      const now = this.byUid(r.uid);
      const fromIndex = now && now.base === r.base ? fileName(now) : undefined;
      if (fromIndex !== undefined && fromIndex !== name) {
        name = fromIndex;
        continue;
      }
      const found = (await readdir(join(this.dir, 'cur'))).find((x) => x === r.base || x.startsWith(`${r.base}:2,`));
      if (found === undefined) throw new MailfleetError('NOT_FOUND', `message ${r.uid} has been expunged`);
      name = found;
    }
  }

  /**
   * Runs a change under the folder lock. Changes that arrive while an earlier pass runs or waits share
   * the next pass (group commit): one lock, one scan, one list write and fsync for all of them, each
   * answered only after that write. Under concurrent STORE/EXPUNGE/APPEND each used to pay all of it.
   */
  private mutate<T>(change: (s: ListState) => Promise<T>): Promise<T> {
    let batch = this.batch;
    if (!batch) {
      const b: NonNullable<Mailbox['batch']> = [];
      batch = this.batch = b;
      this.serial(async () => {
        this.batch = undefined; // started: later changes wait for the next pass
        await this.locked(async (s) => {
          for (const c of b) await c.run(s);
        });
      }).then(
        () => b.forEach((c) => c.settle()),
        (e: unknown) => b.forEach((c) => c.settle(e ?? new Error('mailbox change failed'))),
      );
    }
    return new Promise<T>((resolve, reject) => {
      let result: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
      batch.push({
        // One change failing answers its caller with the error and leaves the others to be written.
        run: async (s) => {
          try {
            result = { ok: true, value: await change(s) };
          } catch (error) {
            result = { ok: false, error };
          }
        },
        settle: (passError) => {
          if (passError !== undefined) reject(passError);
          else if (result?.ok) resolve(result.value);
          else reject(result ? result.error : new Error('mailbox change did not run'));
        },
      });
    });
  }

  /** Sets, adds or removes flag letters on the given UIDs. Returns the records that changed. */
  async setFlags(uids: readonly number[], op: 'set' | 'add' | 'remove', letters: string): Promise<MessageRecord[]> {
    return (await this.storeFlags(uids, op, letters)).changed;
  }

  /**
   * setFlags() with CONDSTORE's condition (RFC 7162 §3.1.3): a message whose modseq is above
   * `unchangedSince` when the folder lock is held is left alone and returned in `modified`.
   */
  storeFlags(uids: readonly number[], op: 'set' | 'add' | 'remove', letters: string, unchangedSince?: number): Promise<{ changed: MessageRecord[]; modified: number[] }> {
    return this.mutate(async (s) => {
      const changed: MessageRecord[] = [];
      const modified: number[] = [];
      const want = new Set(uids);
      for (let i = 0; i < s.messages.length; i++) {
        const r = s.messages[i]!;
        if (!want.has(r.uid)) continue;
        if (unchangedSince !== undefined && r.modseq > unchangedSince) {
          modified.push(r.uid);
          continue;
        }
        let next: string;
        if (op === 'set') next = sortLetters(letters);
        else if (op === 'add') next = sortLetters(r.letters + letters);
        else next = [...r.letters].filter((l) => !letters.includes(l)).join('');
        if (next === r.letters) continue;
        const nr: MessageRecord = { ...r, letters: next, modseq: s.modseq + 1 };
        try {
          await rename(join(this.dir, 'cur', fileName(r)), join(this.dir, 'cur', fileName(nr)));
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
          // Renamed by a tool outside the lock (the list is in sync otherwise): find it by base name.
          const found = (await readdir(join(this.dir, 'cur'))).find((x) => x === r.base || x.startsWith(`${r.base}:2,`));
          if (found === undefined) continue; // expunged meanwhile
          try {
            await rename(join(this.dir, 'cur', found), join(this.dir, 'cur', fileName(nr)));
          } catch (e2) {
            if ((e2 as NodeJS.ErrnoException).code === 'ENOENT') continue;
            throw e2;
          }
        }
        s.modseq++;
        s.messages[i] = nr;
        changed.push(nr);
      }
      return { changed, modified };
    });
  }

  /** Removes the given UIDs (the caller picked them, e.g. those flagged \Deleted). Returns removed UIDs. */
  expunge(uids: readonly number[]): Promise<number[]> {
    return this.mutate(async (s) => {
      const want = new Set(uids);
      const removed: number[] = [];
      const kept: MessageRecord[] = [];
      let bytes = 0;
      for (const r of s.messages) {
        if (!want.has(r.uid)) {
          kept.push(r);
          continue;
        }
        await unlink(join(this.dir, 'cur', fileName(r))).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'ENOENT') throw e;
        });
        removed.push(r.uid);
        bytes += r.size;
      }
      if (removed.length > 0) {
        s.messages = kept;
        s.modseq++;
        recordExpunged(s.history, removed, s.modseq, this.expungeHistoryUids);
        for (const u of removed) this.summaries?.delete(u);
      }
      return { removed, bytes };
    }).then(async ({ removed, bytes }) => {
      await this.account(-bytes, -removed.length);
      return removed;
    });
  }

  /** Stores a message (APPEND): tmp/ → cur/ with its flags, then a UID under the lock. */
  async append(data: Buffer, letters: string, date: Date): Promise<number> {
    return (await this.appendMany([{ data, letters, date }]))[0]!;
  }

  /**
   * Stores messages all or none (MULTIAPPEND, RFC 3502): each is written to tmp/ first, and only when
   * all are there do they move to cur/ and take UIDs, under one lock.
   */
  async appendMany(items: ReadonlyArray<{ readonly data: Buffer; readonly letters: string; readonly date: Date }>): Promise<number[]> {
    return (await this.appendClaiming(items, false)).uids;
  }

  /**
   * appendMany() that, with `claim`, also claims the folder's unclaimed \Recent messages, the new ones
   * included, in the same locked pass (claimRecent()): what the appending session, which has this folder
   * selected read-write, would claim at its next update anyway, in a pass of its own.
   */
  async appendClaiming(items: ReadonlyArray<{ readonly data: Buffer; readonly letters: string; readonly date: Date }>, claim: boolean): Promise<{ uids: number[]; claimed: number[] }> {
    const staged: Array<{ tmp: string; base: string; letters: string; size: number; date: number }> = [];
    try {
      for (const { data, letters, date } of items) {
        const base = uniqueName();
        const tmp = join(this.dir, 'tmp', base);
        let fh;
        try {
          fh = await open(tmp, 'wx', 0o600);
          staged.push({ tmp, base, letters: sortLetters(letters), size: await wireSizeSliced(data), date: date.getTime() });
          await fh.writeFile(data);
          await fh.sync();
        } catch (e) {
          // A full or unreachable disk: a typed (temporary) error.
          throw storeError(e);
        } finally {
          await fh?.close();
        }
        await utimes(tmp, date, date);
      }
    } catch (e) {
      // No partial file left in tmp/.
      for (const f of staged) await unlink(f.tmp).catch(() => undefined);
      throw e;
    }
    return this.adopt(staged, claim);
  }

  /** Copies records of `from` into this folder (hard links when possible). Returns the new UIDs. */
  async copyFrom(from: Mailbox, records: readonly MessageRecord[]): Promise<number[]> {
    const staged: Array<{ tmp: string; base: string; letters: string; size: number; date: number }> = [];
    // Keyword letters mean what each folder's table says: map them through the flag names.
    const sameTable = from.keywords.join('\n') === this.keywords.join('\n');
    for (const r of records) {
      const letters = sameTable || !/[a-z]/.test(r.letters) ? r.letters : await this.lettersFor(from.flagsOf(r), true);
      const base = uniqueName();
      const tmp = join(this.dir, 'tmp', base);
      try {
        await link(from.path(r), tmp);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') continue; // expunged meanwhile
        await copyFile(from.path(r), tmp);
      }
      staged.push({ tmp, base, letters, size: r.size, date: r.date });
    }
    return (await this.adopt(staged, false)).uids;
  }

  private adopt(staged: ReadonlyArray<{ tmp: string; base: string; letters: string; size: number; date: number }>, claim: boolean): Promise<{ uids: number[]; claimed: number[] }> {
    return this.mutate(async (s) => {
      const uids: number[] = [];
      for (const f of staged) {
        await rename(f.tmp, join(this.dir, 'cur', `${f.base}:2,${f.letters}`));
        const rec: MessageRecord = { uid: s.nextUid++, base: f.base, letters: f.letters, size: f.size, date: f.date, modseq: ++s.modseq };
        s.messages.push(rec);
        uids.push(rec.uid);
      }
      let claimed: number[] = [];
      if (claim) {
        const from = s.firstRecent;
        s.firstRecent = s.nextUid;
        claimed = s.messages.filter((r) => r.uid >= from).map((r) => r.uid);
      }
      return { uids, claimed };
    }).then(async (r) => {
      await this.account(
        staged.reduce((n, f) => n + f.size, 0),
        r.uids.length,
      );
      return r;
    });
  }

  /** ENVELOPE / BODYSTRUCTURE / search fields, from the cache file or parsed once and appended to it. */
  async summary(r: MessageRecord): Promise<MessageSummary> {
    const cache = await this.loadSummaries();
    const hit = cache.get(r.uid);
    if (hit) return hit;
    const buf = await this.read(r);
    const root = await parseMime(buf, this.mimeLimits);
    const s = summarise(root, buf);
    cache.set(r.uid, s);
    // Append-only JSON lines: concurrent writers on other nodes at worst duplicate a line.
    await this.appendCache(`${JSON.stringify({ u: r.uid, v: this.uidValidity, f: SUMMARY_FORMAT, ...s })}\n`);
    return s;
  }

  /**
   * PREVIEW text (RFC 8970): from the cache, else made from the file once and kept with the summary (a
   * later line for the same UID replaces the earlier one at load). `lazy` answers only from the cache.
   */
  async preview(r: MessageRecord, lazy = false): Promise<string | undefined> {
    const cache = await this.loadSummaries();
    const hit = cache.get(r.uid);
    if (hit?.preview !== undefined || lazy) return hit?.preview;
    const buf = await this.read(r);
    const root = await parseMime(buf, this.mimeLimits);
    const s = { ...(hit ?? summarise(root, buf)), preview: previewOf(root, buf) };
    cache.set(r.uid, s);
    await this.appendCache(`${JSON.stringify({ u: r.uid, v: this.uidValidity, f: SUMMARY_FORMAT, ...s })}\n`);
    return s.preview;
  }

  /** Cache lines made in the same event-loop turn, appended by one write (a cold SORT makes thousands). */
  private cacheLines: string[] = [];
  private cacheFlush?: Promise<void>;

  private appendCache(line: string): Promise<void> {
    this.cacheLines.push(line);
    this.cacheFlush ??= new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
      const text = this.cacheLines.join('');
      this.cacheLines = [];
      this.cacheFlush = undefined;
      // A torn line (crash, or two writers' chunks interleaving) is skipped at load and made again.
      await writeFile(join(this.dir, CACHE_FILE), text, { flag: 'a' }).catch(() => {});
    });
    return this.cacheFlush;
  }

  /**
   * The summaries cached so far, by UID (what summary() would answer without reading a file). SORT and
   * THREAD look up 10,000 keys at a time: a map lookup each instead of a promise each.
   */
  cachedSummaries(): Promise<ReadonlyMap<number, MessageSummary>> {
    return this.loadSummaries();
  }

  private loadSummaries(): Promise<Map<number, MessageSummary>> {
    if (this.summaries) return Promise.resolve(this.summaries);
    this.summaryLoad ??= (async () => {
      const m = new Map<number, MessageSummary>();
      const text = await readFile(join(this.dir, CACHE_FILE), 'utf8').catch(() => '');
      for (const line of text.split('\n')) {
        if (!line) continue;
        try {
          const o = JSON.parse(line) as MessageSummary & { u: number; v: number; f?: number };
          if (o.v === this.uidValidity && o.f === SUMMARY_FORMAT) m.set(o.u, { envelope: o.envelope, bodystructure: o.bodystructure, body: o.body, search: o.search, sort: o.sort, preview: o.preview });
        } catch {
          /* a torn line from a crashed writer */
        }
      }
      this.summaries = m;
      return m;
    })();
    return this.summaryLoad;
  }
}

export function summarise(root: MimePart, buf: Buffer): MessageSummary {
  const search: Record<string, string> = {};
  for (const h of ['from', 'to', 'cc', 'bcc', 'subject', 'date', 'message-id']) {
    const v = headerValue(root.headers, h);
    if (v === undefined) continue;
    search[h] = h === 'date' ? v : decodedHeader(v);
    // Addresses also as `name <user@host>` without comments: SEARCH FROM user@host finds
    // `<user (comment)@ (comment) host>` (Dovecot searches the parsed addresses too).
    if (h === 'from' || h === 'to' || h === 'cc' || h === 'bcc') search[h] += `\n${addressSearchText(search[h])}`;
  }
  const sort = sortKeysOf((h) => headerValue(root.headers, h), search.subject);
  return { envelope: envelopeOf(root.headers), bodystructure: bodyStructureOf(root, buf, true), body: bodyStructureOf(root, buf, false), search, sort };
}

/** Creates the Maildir directories of a folder. */
export async function createMaildirFolder(dir: string): Promise<void> {
  for (const d of ['cur', 'new', 'tmp']) await mkdir(join(dir, d), { recursive: true, mode: 0o700 });
}
