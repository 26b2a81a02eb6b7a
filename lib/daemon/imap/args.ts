/**
 * Argument schema helpers: each command's parse() reads its tokens with these; any mismatch throws
 * MailfleetError('BAD_REQUEST'), which the session answers with a tagged BAD.
 */
import { MailfleetError } from '../../errors.js';
import { checkName, nameFromWire } from '../../store/mailbox/names.js';
import type { Token } from './parser.js';
import { parseImapDate } from './wire.js';

export function bad(text: string): MailfleetError {
  return new MailfleetError('BAD_REQUEST', text, { status: 400 });
}

/** A command asks for more work than imap.max* allows: `NO [LIMIT] …` (not counted as a bad command). */
export function overLimit(text: string): MailfleetError {
  return new MailfleetError('LIMIT_EXCEEDED', text, { status: 400, details: { imapCode: 'LIMIT' } });
}

/**
 * Work one command may ask for (imap.* options; defaults in lib/spec/defaults.ts DEFAULT_IMAP_WORK_LIMITS).
 * The session hands its settings to every parse().
 */
export interface WorkLimits {
  /** Search keys in one SEARCH. @default 1000 */
  readonly maxSearchKeys: number;
  /** Nesting of NOT / OR / parentheses in one SEARCH. @default 32 */
  readonly maxSearchDepth: number;
  /** Comma-separated ranges in one sequence or UID set. @default 10000 */
  readonly maxSequenceSetRanges: number;
}

const NO_LIMITS: WorkLimits = { maxSearchKeys: Infinity, maxSearchDepth: Infinity, maxSequenceSetRanges: Infinity };

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Set while an IMAP4rev2 session's command is parsed (withNameMode): 7-bit names are not modified UTF-7. */
let utf8Names = false;

/**
 * Runs a command's parse (synchronous) reading mailbox names as the session sends them: UTF-8 for an
 * IMAP4rev2 session (RFC 9051 §5.1), modified UTF-7 for IMAP4rev1.
 */
export function withNameMode<T>(rev2: boolean, parse: () => T): T {
  const prev = utf8Names;
  utf8Names = rev2;
  try {
    return parse();
  } finally {
    utf8Names = prev;
  }
}

/**
 * A mailbox name or pattern sent in 8-bit by an IMAP4rev2 session: UTF-8 (RFC 9051 §5.1), in NFC;
 * undefined for 7-bit text and for IMAP4rev1 sessions, whose names are modified UTF-7 only: an 8-bit
 * name there is refused as before (as Dovecot does), not taken as UTF-8.
 */
function utf8Text(b: Buffer): string | undefined {
  if (!utf8Names || !b.some((c) => c > 0x7f)) return undefined;
  try {
    return STRICT_UTF8.decode(b).normalize('NFC');
  } catch {
    throw bad('Mailbox name is not UTF-8');
  }
}

/** Sequential reader over a command's tokens. */
export class Args {
  private i = 0;
  constructor(
    private readonly tokens: readonly Token[],
    /** @default - no limits (tests and commands that read no sets) */
    readonly limits: WorkLimits = NO_LIMITS,
  ) {}

  get left(): number {
    return this.tokens.length - this.i;
  }

  peek(): Token | undefined {
    return this.tokens[this.i];
  }

  next(what: string): Token {
    const t = this.tokens[this.i++];
    if (!t) throw bad(`Missing ${what}`);
    return t;
  }

  end(): void {
    if (this.i < this.tokens.length) throw bad('Too many arguments');
  }

  atom(what: string): string {
    const t = this.next(what);
    if (t.t !== 'atom') throw bad(`Expected ${what}`);
    return t.v;
  }

  /** astring: atom, quoted or literal (UTF-8 text). */
  astring(what: string): string {
    const t = this.next(what);
    if (t.t === 'atom') return t.v;
    if (t.t === 'string') return t.v.toString('utf8');
    throw bad(`Expected ${what}`);
  }

  /** A mailbox name (modified UTF-7 on the wire) → canonical Unicode name. */
  mailbox(): string {
    const t = this.next('mailbox name');
    if (t.t === 'list') throw bad('Expected mailbox name');
    const utf8 = t.t === 'string' ? utf8Text(t.v) : undefined;
    if (utf8 !== undefined) return checkName(utf8);
    const wire = t.t === 'atom' ? t.v : t.v.toString('latin1');
    // IMAP4rev2 names are UTF-8 even when 7-bit: "R&D" is R&D, not modified UTF-7.
    return utf8Names ? checkName(wire) : nameFromWire(wire);
  }

  /** A list pattern: kept raw (wildcards allowed). */
  pattern(what: string): string {
    const t = this.next(what);
    if (t.t === 'list') throw bad(`Expected ${what}`);
    return t.t === 'atom' ? t.v : (utf8Text(t.v) ?? t.v.toString('latin1'));
  }

  list(what: string): readonly Token[] {
    const t = this.next(what);
    if (t.t !== 'list') throw bad(`Expected ${what} list`);
    return t.v;
  }

  optionalList(): readonly Token[] | undefined {
    const t = this.peek();
    if (t?.t !== 'list') return undefined;
    this.i++;
    return t.v;
  }

  literalOrString(what: string): Buffer {
    const t = this.next(what);
    if (t.t !== 'string') throw bad(`Expected ${what}`);
    return t.v;
  }

  number(what: string): number {
    const v = this.atom(what);
    if (!/^\d{1,10}$/.test(v)) throw bad(`Expected ${what}`);
    return Number(v);
  }

  date(what: string, withTime: boolean): Date {
    const t = this.next(what);
    const s = t.t === 'atom' ? t.v : t.t === 'string' ? t.v.toString('latin1') : '';
    const d = parseImapDate(s, withTime);
    if (!d) throw bad(`Invalid ${what}`);
    return d;
  }
}

/** A sequence set: ranges with '*' (Infinity) resolved against the view by the caller. */
export type SeqSet = ReadonlyArray<readonly [number, number]>;

// --- SEARCHRES (RFC 5182) ---
/**
 * "$": the result the last SEARCH/SORT … RETURN (SAVE) kept (SelectedMailbox.searchResult). Parsing
 * has no session, so it is this marker (an empty set to code that does not know it), substituted when
 * the set is resolved (SelectedMailbox.resolve, SEARCH's `$` key).
 */
export const SEARCH_RESULT: SeqSet = Object.freeze([]);

export function isSearchResult(set: SeqSet): boolean {
  return set === SEARCH_RESULT;
}
// --- end SEARCHRES ---

export function parseSeqSet(s: string, maxRanges = Infinity): SeqSet {
  if (s === '$') return SEARCH_RESULT;
  let ranges = 1;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) === 0x2c) ranges++;
  if (ranges > maxRanges) throw overLimit(`Too many ranges in the sequence set (limit ${maxRanges})`);
  const out: Array<[number, number]> = [];
  for (const part of s.split(',')) {
    const m = /^(\d+|\*)(?::(\d+|\*))?$/.exec(part);
    if (!m) throw bad(`Invalid sequence set ${s}`);
    const a = m[1] === '*' ? Infinity : Number(m[1]);
    const b = m[2] === undefined ? a : m[2] === '*' ? Infinity : Number(m[2]);
    if (a === 0 || b === 0) throw bad('Sequence numbers start at 1');
    out.push(a <= b ? [a, b] : [b, a]);
  }
  return out;
}

export function seqSetArg(args: Args): SeqSet {
  return parseSeqSet(args.atom('sequence set'), args.limits.maxSequenceSetRanges);
}

/**
 * A set as sorted, merged, non-overlapping ranges within 1..max ('*' = max): membership by binary
 * search and resolution without a pass over the mailbox per range (a 10,000-range UID set against a
 * 100,000-message mailbox was 10^9 comparisons).
 */
export function normalizeSet(set: SeqSet, max: number): Array<[number, number]> {
  const rs: Array<[number, number]> = [];
  for (const [a0, b0] of set) {
    const a = a0 === Infinity ? max : a0;
    const b = b0 === Infinity ? max : b0;
    rs.push([Math.min(a, b), Math.max(a, b)]);
  }
  rs.sort((x, y) => x[0] - y[0]);
  const out: Array<[number, number]> = [];
  for (const r of rs) {
    const last = out[out.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else out.push([r[0], r[1]]);
  }
  return out;
}

/** Whether n lies in normalised ranges. */
export function inRanges(ranges: ReadonlyArray<readonly [number, number]>, n: number): boolean {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [a, b] = ranges[mid]!;
    if (n < a) hi = mid - 1;
    else if (n > b) lo = mid + 1;
    else return true;
  }
  return false;
}

/** Flag list: "(\\Seen \\Flagged)" or a single flag atom. */
const SYSTEM_FLAG_NAMES = new Set(['\\answered', '\\flagged', '\\deleted', '\\seen', '\\draft']);

export function flagList(tokens: readonly Token[] | Token): string[] {
  const items = Array.isArray(tokens) ? tokens : [tokens as Token];
  return items.map((t: Token) => {
    if (t.t !== 'atom' || !/^\\?[^\s(){%*"\\\]]+$/.test(t.v)) throw bad('Invalid flag');
    // \Recent is a fetch-only flag (RFC 3501 §9 flag vs flag-fetch): a client cannot set it (BAD, as Dovecot).
    if (t.v.toLowerCase() === '\\recent') throw bad('\\Recent cannot be set');
    // Other unknown system flags too: a client cannot store them either (BAD, as Dovecot).
    if (t.v.startsWith('\\') && !SYSTEM_FLAG_NAMES.has(t.v.toLowerCase())) throw bad(`Invalid system flag ${t.v}`);
    return t.v;
  });
}

/** Formats UIDs as a compact set "1:3,7" (COPYUID, APPENDUID). */
export function formatSet(uids: readonly number[]): string {
  const sorted = [...uids];
  const out: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    out.push(i === j ? String(sorted[i]) : `${sorted[i]}:${sorted[j]}`);
    i = j + 1;
  }
  return out.join(',');
}
