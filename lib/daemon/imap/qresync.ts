/**
 * What SELECT/EXAMINE (QRESYNC (…)) and UID FETCH (CHANGEDSINCE … VANISHED) add (RFC 7162 §3.2.5,
 * §3.2.6): the UIDs gone since the client's modseq, then the messages changed since it, from the UID
 * list's modseqs and expunge history (condstore.ts).
 */
import { inRanges, normalizeSet } from './args.js';
import { uidSet, vanishedFor, type QresyncParam } from './condstore.js';
import type { SelectedMailbox } from './selected.js';

/** `* VANISHED (EARLIER) …` and the FETCHes of what changed since the client's modseq; none on a UIDVALIDITY change. */
export function qresyncLines(sel: SelectedMailbox, q: QresyncParam): string[] {
  const mb = sel.mailbox;
  if (q.uidValidity !== mb.uidValidity) return [];
  const out: string[] = [];
  const gone = vanishedFor(mb, q.modseq, q.knownUids);
  if (gone.length > 0) out.push(`* VANISHED (EARLIER) ${uidSet(gone)}`);
  // Flag changes are reported for the known UIDs only, when the client named them (§3.2.5).
  const known = q.knownUids ? normalizeSet(q.knownUids, Math.max(mb.nextUid - 1, 1)) : undefined;
  sel.uids.forEach((uid, i) => {
    const r = mb.byUid(uid);
    if (!r || r.modseq <= q.modseq || (known && !inRanges(known, uid))) return;
    out.push(sel.flagsFetch(i + 1, r, true));
  });
  return out;
}
