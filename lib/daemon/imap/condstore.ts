/**
 * CONDSTORE and QRESYNC (RFC 7162) state of one connection, and the helpers the commands share.
 *
 * Modseqs come from the folder's UID list (Mailbox.modseq, MessageRecord.modseq, the expunge history):
 * the list is what every process and node sharing the folder reads under the folder lock, so any of
 * them answers CHANGEDSINCE or QRESYNC alike. Nothing here scans message files.
 */
import type { Mailbox } from '../../store/mailbox/index.js';
import { Args, bad, inRanges, normalizeSet, parseSeqSet, type SeqSet } from './args.js';
import type { Token } from './parser.js';
import type { ImapSession } from './session.js';

/** What the connection has enabled (RFC 7162 §3.1, §3.2.3): kept for the rest of the connection. */
export interface ModseqModes {
  condstore: boolean;
  qresync: boolean;
  /** ENABLE IMAP4rev2 (RFC 9051, rev2.ts): no \Recent, UID in unsolicited FETCH. @default false */
  rev2?: boolean;
}

const modes = new WeakMap<ImapSession, ModseqModes>();

/** The connection's modes object (shared by reference with its SelectedMailbox). */
export function modesOf(s: ImapSession): ModseqModes {
  let m = modes.get(s);
  if (!m) modes.set(s, (m = { condstore: false, qresync: false }));
  return m;
}

/**
 * A CONDSTORE-enabling command ran (RFC 7162 §3.1). When a mailbox is selected and CONDSTORE was not
 * on yet, the client learns the mailbox's HIGHESTMODSEQ now (§3.1.2.1: it had no way to know it).
 */
export function enableCondstore(s: ImapSession): void {
  const m = modesOf(s);
  if (m.condstore) return;
  m.condstore = true;
  if (s.selected) s.write(`* OK [HIGHESTMODSEQ ${s.selected.mailbox.modseq}] Highest\r\n`);
}

/** A mod-sequence value (RFC 7162 mod-sequence-valzer): digits, below 2^63 (here: a safe integer). */
export function modseqArg(a: Args, what: string): number {
  const v = a.atom(what);
  if (!/^\d{1,16}$/.test(v) || !Number.isSafeInteger(Number(v))) throw bad(`Invalid ${what}`);
  return Number(v);
}

/** Sorted UIDs as a compact IMAP set "1:3,7". */
export function uidSet(uids: readonly number[]): string {
  const sorted = [...uids].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    out.push(i === j ? String(sorted[i]) : `${sorted[i]}:${sorted[j]}`);
    i = j + 1;
  }
  return out.join(',');
}

/** The QRESYNC select parameter (RFC 7162 §3.2.5): uidvalidity, modseq, [known-uids [seq-match-data]]. */
export interface QresyncParam {
  readonly uidValidity: number;
  readonly modseq: number;
  readonly knownUids?: SeqSet;
  /** Parsed for syntax only: the expunge history answers without it (the RFC makes its use optional). */
  readonly seqMatch?: readonly [SeqSet, SeqSet];
}

/** SELECT/EXAMINE parameters: (CONDSTORE) and/or (QRESYNC (…)). */
export interface SelectParams {
  readonly condstore: boolean;
  readonly qresync?: QresyncParam;
}

export function parseSelectParams(list: readonly Token[] | undefined, maxRanges: number): SelectParams {
  if (!list) return { condstore: false };
  const a = new Args(list);
  let condstore = false;
  let qresync: QresyncParam | undefined;
  while (a.left > 0) {
    const name = a.atom('select parameter').toUpperCase();
    if (name === 'CONDSTORE') condstore = true;
    else if (name === 'QRESYNC') qresync = parseQresync(a.list('QRESYNC parameters'), maxRanges);
    else throw bad(`Unknown select parameter ${name}`);
  }
  return { condstore, qresync };
}

function parseQresync(t: readonly Token[], maxRanges: number): QresyncParam {
  const a = new Args(t);
  const uidValidity = a.number('uidvalidity');
  if (uidValidity === 0) throw bad('Invalid uidvalidity');
  const modseq = modseqArg(a, 'mod-sequence');
  if (modseq === 0) throw bad('Invalid mod-sequence');
  let knownUids: SeqSet | undefined;
  let seqMatch: readonly [SeqSet, SeqSet] | undefined;
  if (a.left > 0 && a.peek()?.t === 'atom') knownUids = parseSeqSet(a.atom('known UIDs'), maxRanges);
  if (a.left > 0) {
    const m = new Args(a.list('sequence match data'));
    seqMatch = [
      parseSeqSet(m.atom('known sequence set'), maxRanges),
      parseSeqSet(m.atom('known UID set'), maxRanges),
    ];
    m.end();
  }
  a.end();
  return { uidValidity, modseq, knownUids, seqMatch };
}

/**
 * UIDs to report as VANISHED (EARLIER) to a client that last synchronised at `modseq` and names
 * `known` (undefined: every UID below UIDNEXT). From the expunge history when it reaches back that far;
 * otherwise every named UID no longer in the folder (RFC 7162 §3.2.5.2 allows reporting UIDs the
 * client never saw, and it must ignore them).
 */
export function vanishedFor(mb: Mailbox, modseq: number, known: SeqSet | undefined): number[] {
  const max = Math.max(mb.nextUid - 1, 1);
  const ranges = known ? normalizeSet(known, max) : [[1, max] as [number, number]];
  const history = mb.vanishedSince(modseq);
  if (history) return history.filter((u) => inRanges(ranges, u));
  const out: number[] = [];
  // Walk the named ranges against the present UIDs (both sorted): the gaps are what vanished.
  const present = mb.messages;
  let j = 0;
  for (const [lo, hi] of ranges) {
    const top = Math.min(hi, mb.nextUid - 1);
    for (let u = lo; u <= top; u++) {
      while (j < present.length && present[j]!.uid < u) j++;
      if (j < present.length && present[j]!.uid === u) continue;
      out.push(u);
    }
  }
  return out;
}

/** FETCH modifiers (RFC 7162 §3.1.4.1, §3.2.6): (CHANGEDSINCE n [VANISHED]). */
export interface FetchModifiers {
  readonly changedSince?: number;
  readonly vanished: boolean;
}

export function parseFetchModifiers(list: readonly Token[] | undefined): FetchModifiers {
  if (!list) return { vanished: false };
  const a = new Args(list);
  let changedSince: number | undefined;
  let vanished = false;
  while (a.left > 0) {
    const name = a.atom('fetch modifier').toUpperCase();
    if (name === 'CHANGEDSINCE') changedSince = modseqArg(a, 'mod-sequence');
    else if (name === 'VANISHED') vanished = true;
    else throw bad(`Unknown fetch modifier ${name}`);
  }
  if (vanished && changedSince === undefined) throw bad('VANISHED needs CHANGEDSINCE');
  return { changedSince, vanished };
}

/**
 * The SEARCH MODSEQ key's arguments (RFC 7162 §3.1.5): [entry-name entry-type-req] mod-sequence. The
 * entry (a per-flag modseq) is accepted and not used: one modseq per message is kept, which is at least
 * as high as any per-flag one, so the answer is a superset, as the RFC permits for servers without them.
 */
export function parseModseqKey(a: Args): number {
  const t = a.peek();
  if (t?.t === 'string') {
    a.next('entry name');
    const type = a.atom('entry type').toLowerCase();
    if (type !== 'all' && type !== 'priv' && type !== 'shared') throw bad('Invalid entry type');
  }
  return modseqArg(a, 'mod-sequence');
}

/** Whether a SEARCH key tree uses MODSEQ anywhere. */
export function hasModseqKey(k: unknown): boolean {
  if (typeof k !== 'object' || k === null) return false;
  const o = k as Record<string, unknown>;
  if (o.op === 'modseq') return true;
  return (
    ['key', 'a', 'b'].some((f) => hasModseqKey(o[f])) || (Array.isArray(o.keys) && o.keys.some(hasModseqKey))
  );
}
