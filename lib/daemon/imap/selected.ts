/**
 * A session's view of its selected mailbox: its own UID ↔ sequence-number map and the modseq it last
 * reported. The records themselves live in the shared Mailbox; this is all a session keeps.
 */
import type { MailboxHandle, MessageRecord } from '../../store/mailbox/index.js';
import { normalizeSet, type SeqSet } from './args.js';

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

  constructor(
    readonly handle: MailboxHandle,
    readonly readOnly: boolean,
  ) {
    this.uids = handle.mailbox.messages.map((m) => m.uid);
    this.seenModseq = handle.mailbox.modseq;
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
    // '*' is the highest UID (or sequence number); a range past it still names that message (RFC 3501 §6.4.8).
    const ranges = normalizeSet(set, byUid ? this.uids[n - 1]! : n);
    const push = (i: number) => {
      const uid = this.uids[i]!;
      const rec = this.mailbox.byUid(uid);
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

  /** True when every sequence number in the set exists (a non-UID command naming more is a BAD). */
  inRange(set: SeqSet): boolean {
    const n = this.uids.length;
    return set.every(([a, b]) => (a === Infinity || a <= n) && (b === Infinity || b <= n) && n > 0);
  }

  noteOwn(recs: readonly MessageRecord[]): void {
    for (const r of recs) this.own.set(r.uid, r.modseq);
  }

  /** Untagged updates since the last call: EXPUNGE (when allowed), EXISTS, FETCH FLAGS. */
  sync(allowExpunge: boolean, withUid: boolean): string[] {
    const mb = this.mailbox;
    const out: string[] = [];
    if (allowExpunge) {
      for (let i = this.uids.length - 1; i >= 0; i--) {
        if (mb.indexOfUid(this.uids[i]!) < 0) {
          out.push(`* ${i + 1} EXPUNGE`);
          this.uids.splice(i, 1);
        }
      }
    }
    const last = this.uids.length > 0 ? this.uids[this.uids.length - 1]! : 0;
    const before = this.uids.length;
    for (const r of mb.messages) if (r.uid > last) this.uids.push(r.uid);
    if (this.uids.length !== before) out.push(`* ${this.uids.length} EXISTS`);
    if (mb.modseq > this.seenModseq) {
      for (const r of mb.messages) {
        if (r.modseq <= this.seenModseq || r.uid > last || this.own.get(r.uid) === r.modseq) continue;
        const seq = this.seqOf(r.uid);
        if (seq > 0) out.push(`* ${seq} FETCH (${withUid ? `UID ${r.uid} ` : ''}FLAGS (${mb.flagsOf(r).join(' ')}))`);
      }
      this.seenModseq = mb.modseq;
    }
    this.own.clear();
    return out;
  }
}
