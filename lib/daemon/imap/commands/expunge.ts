import { defineCommand, SELECTED } from '../command.js';
import { Args, seqSetArg, type SeqSet } from '../args.js';
import type { ImapSession } from '../session.js';

async function expungeDeleted(s: ImapSession, uidSet: SeqSet | undefined) {
  const sel = s.selected!;
  if (sel.readOnly) return { status: 'NO' as const, code: 'READ-ONLY', text: 'Mailbox is read-only' };
  const allowed = uidSet ? new Set(sel.resolve(uidSet, true).map((m) => m.uid)) : undefined;
  const doomed = sel.mailbox.messages.filter((m) => m.letters.includes('T') && (!allowed || allowed.has(m.uid))).map((m) => m.uid);
  if (doomed.length > 0) {
    await sel.mailbox.expunge(doomed);
    sel.handle.changed();
  }
  // The EXPUNGE responses themselves come from the session's update flush.
  return { text: 'EXPUNGE completed' };
}

export const expunge = defineCommand({
  name: 'EXPUNGE',
  states: SELECTED,
  parse: (t) => new Args(t).end(),
  handler: (s) => expungeDeleted(s, undefined),
});

/** UID EXPUNGE (UIDPLUS): only the \Deleted messages in the UID set. */
export const uidExpunge = defineCommand({
  name: 'UID EXPUNGE',
  states: SELECTED,
  parse(t, limits) {
    const a = new Args(t, limits);
    const set = seqSetArg(a);
    a.end();
    return set;
  },
  handler: (s, set) => expungeDeleted(s, set),
});
