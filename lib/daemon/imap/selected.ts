/**
 * A session's view of its selected mailbox: its own UID ↔ sequence-number map and the modseq it last
 * reported. The records themselves live in the shared Mailbox; this is all a session keeps.
 */
import { SYSTEM_FLAGS, type MailboxHandle, type MessageRecord } from '../../store/mailbox/index.js';
import { isSearchResult, normalizeSet, type SeqSet } from './args.js';
import { uidSet, type ModseqModes } from './condstore.js';

export interface Selected {
  readonly seq: number;
  readonly uid: number;
  readonly rec: MessageRecord;
}

export class SelectedMailbox {
  uids: number[];
  private seenModseq: number;
  /** Flag changes this session made itself (uid → modseq): not echoed again by sync(). */
  private readonly own = new Map<number, number>();
  /** Messages this session claimed as \Recent (RFC 3501 §2.3.2): only it shows them so. */
  private readonly recent = new Set<number>();
  /** The keyword table last announced in * FLAGS (joined), to announce it again when it grows. */
  private flagsSent: string;

  constructor(
    readonly handle: MailboxHandle,
    readonly readOnly: boolean,
    /**
     * The connection's CONDSTORE/QRESYNC modes (condstore.ts), by reference: ENABLE or a CONDSTORE
     * command later in the session changes what sync() sends.
     * @default - neither enabled
     */
    readonly modes: ModseqModes = { condstore: false, qresync: false },
  ) {
    this.uids = handle.mailbox.messages.map((m) => m.uid);
    this.seenModseq = handle.mailbox.modseq;
    this.flagsSent = this.keywordKey();
  }

  private keywordKey(): string {
    return this.mailbox.keywords.filter((k) => k !== undefined).join(' ');
  }

  /** * FLAGS and * OK [PERMANENTFLAGS] as SELECT sends them, for the folder's current keyword table. */
  flagLines(): string[] {
    const flags = [...SYSTEM_FLAGS, ...this.mailbox.keywords.filter((k) => k !== undefined)].join(' ');
    this.flagsSent = this.keywordKey();
    return [
      `* FLAGS (${flags})`,
      // \* : clients may define new keywords (kept per folder, up to 26).
      this.readOnly ? '* OK [PERMANENTFLAGS ()] Read-only mailbox' : `* OK [PERMANENTFLAGS (${flags} \\*)] Flags permitted`,
    ];
  }

  /** The FLAGS lines again when a keyword was defined since they were sent (by any session), else none. */
  flagUpdate(): string[] {
    return this.keywordKey() === this.flagsSent ? [] : this.flagLines();
  }

  /**
   * Claims the folder's unclaimed \Recent messages for this session (a read-only one never claims);
   * returns how many this session now holds. Called at SELECT and before each update flush.
   */
  async claimRecent(): Promise<number> {
    if (!this.readOnly) for (const u of await this.mailbox.claimRecent()) this.recent.add(u);
    return this.recent.size;
  }

  /** Messages this session claimed as \Recent elsewhere (its APPEND to this folder: appendClaiming). */
  noteRecent(uids: readonly number[]): void {
    for (const u of uids) this.recent.add(u);
  }

  /** RECENT for SELECT/EXAMINE: what this session claimed, or (EXAMINE) what nobody has claimed yet. */
  /** The RECENT count this session last reported (SELECT sets it). */
  reportedRecent = 0;

  get recentCount(): number {
    return this.readOnly ? this.mailbox.unclaimedRecent : this.recent.size;
  }

  isRecent(uid: number): boolean {
    return this.readOnly ? uid >= this.mailbox.firstRecent : this.recent.has(uid);
  }

  /** A message's flags as this session shows them: the stored ones and \Recent if it is recent here. */
  flagsOf(r: MessageRecord): string[] {
    const f = this.mailbox.flagsOf(r);
    // IMAP4rev2 has no \Recent (RFC 9051 Appendix E).
    return this.isRecent(r.uid) && !this.modes.rev2 ? [...f, '\\Recent'] : f; // last, where Dovecot puts it
  }

  get mailbox() {
    return this.handle.mailbox;
  }

  seqOf(uid: number): number {
    let lo = 0;
    let hi = this.uids.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const u = this.uids[mid]!;
      if (u === uid) return mid + 1;
      if (u < uid) lo = mid + 1;
      else hi = mid - 1;
    }
    return 0;
  }

  /**
   * Messages named by a sequence or UID set, ascending, that still exist in the mailbox. Ranges are
   * merged first and each found by binary search, so the cost follows the messages named, not ranges × mailbox.
   */
  resolve(set: SeqSet, byUid: boolean): Selected[] {
    const out: Selected[] = [];
    const n = this.uids.length;
    if (n === 0) return out;
    if (isSearchResult(set)) set = this.savedSet(byUid);
    // '*' is the highest UID (or sequence number); a range past it still names that message (RFC 3501 §6.4.8).
    const ranges = normalizeSet(set, byUid ? this.uids[n - 1]! : n);
    const push = (i: number) => {
      const uid = this.uids[i]!;
      // Expunged elsewhere but not yet reported to this session: still in its view (RFC 2180 §4.1).
      const rec = this.mailbox.byUid(uid) ?? this.mailbox.expungedRecord(uid);
      if (rec) out.push({ seq: i + 1, uid, rec });
    };
    for (const [lo, hi] of ranges) {
      if (byUid) {
        for (let i = this.lowerBound(lo); i < n && this.uids[i]! <= hi; i++) push(i);
      } else {
        for (let s = Math.max(lo, 1); s <= Math.min(hi, n); s++) push(s - 1);
      }
    }
    return out;
  }

  /** Index of the first UID >= uid. */
  private lowerBound(uid: number): number {
    let lo = 0;
    let hi = this.uids.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.uids[mid]! < uid) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * UIDs (ascending) the last SEARCH/SORT RETURN (SAVE) kept, for "$" (RFC 5182). Kept per selection: a
   * new SELECT/EXAMINE starts with none. Messages expunged since simply no longer resolve.
   */
  searchResult: readonly number[] = [];

  /** The saved result as ranges of UIDs or of this session's sequence numbers. */
  private savedSet(byUid: boolean): SeqSet {
    const out: Array<[number, number]> = [];
    for (const u of this.searchResult) {
      const n = byUid ? u : this.seqOf(u);
      if (n > 0) out.push([n, n]);
    }
    return out;
  }

  /** True when every sequence number in the set exists (a non-UID command naming more is a BAD). */
  inRange(set: SeqSet): boolean {
    if (isSearchResult(set)) return true; // "$" names only messages of this view
    const n = this.uids.length;
    return set.every(([a, b]) => (a === Infinity || a <= n) && (b === Infinity || b <= n) && n > 0);
  }

  noteOwn(recs: readonly MessageRecord[]): void {
    for (const r of recs) this.own.set(r.uid, r.modseq);
  }

  /**
   * An untagged FETCH carrying a message's flags. With CONDSTORE enabled it also carries MODSEQ (RFC
   * 7162 §3.1); UID in answer to a UID command and always once QRESYNC is enabled (§3.2.4), as Dovecot,
   * or IMAP4rev2 (RFC 9051 §7.5.2: unsolicited FETCH responses carry UID).
   */
  flagsFetch(seq: number, r: MessageRecord, withUid: boolean): string {
    const cs = this.modes.condstore;
    return `* ${seq} FETCH (${withUid || this.modes.qresync || this.modes.rev2 ? `UID ${r.uid} ` : ''}FLAGS (${this.flagsOf(r).join(' ')})${cs ? ` MODSEQ (${r.modseq})` : ''})`;
  }

  /** Untagged updates since the last call: EXPUNGE or VANISHED (when allowed), EXISTS, FETCH FLAGS. */
  sync(allowExpunge: boolean, withUid: boolean): string[] {
    const mb = this.mailbox;
    const out: string[] = this.flagUpdate();
    if (allowExpunge) {
      const vanished: number[] = [];
      for (let i = this.uids.length - 1; i >= 0; i--) {
        if (mb.indexOfUid(this.uids[i]!) < 0) {
          // QRESYNC sessions get one VANISHED with UIDs instead of an EXPUNGE per message (RFC 7162 §3.2.10).
          if (this.modes.qresync) vanished.push(this.uids[i]!);
          else out.push(`* ${i + 1} EXPUNGE`);
          this.recent.delete(this.uids[i]!);
          this.uids.splice(i, 1);
        }
      }
      if (vanished.length > 0) out.push(`* VANISHED ${uidSet(vanished)}`);
    }
    const last = this.uids.length > 0 ? this.uids[this.uids.length - 1]! : 0;
    const before = this.uids.length;
    for (const r of mb.messages) if (r.uid > last) this.uids.push(r.uid);
    if (this.uids.length !== before) out.push(`* ${this.uids.length} EXISTS`);
    // RECENT when the count this session holds changed (new messages claimed, recent ones expunged), as Dovecot.
    if (this.recentCount !== this.reportedRecent && !this.modes.rev2) out.push(`* ${(this.reportedRecent = this.recentCount)} RECENT`);
    if (mb.modseq > this.seenModseq) {
      for (const r of mb.messages) {
        if (r.modseq <= this.seenModseq || r.uid > last || this.own.get(r.uid) === r.modseq) continue;
        const seq = this.seqOf(r.uid);
        if (seq > 0) out.push(this.flagsFetch(seq, r, withUid));
      }
      this.seenModseq = mb.modseq;
    }
    this.own.clear();
    return out;
  }
}
