import { defineCommand, SELECTED, type Completion } from '../command.js';
import { Args, bad, formatSet, seqSetArg, type SeqSet } from '../args.js';
import { isMailfleetError } from '../../../errors.js';
import type { ImapSession } from '../session.js';
import type { Token } from '../parser.js';
import type { WorkLimits } from '../args.js';
import { overQuota, quotaAdded } from '../quota.js';

export function parseCopy(t: readonly Token[], limits: WorkLimits) {
  const a = new Args(t, limits);
  const set = seqSetArg(a);
  const name = a.mailbox();
  a.end();
  return { set, name };
}

/** COPY and MOVE share this: hard-link into the destination, COPYUID (UIDPLUS) in the reply. */
export async function copyMessages(s: ImapSession, a: { set: SeqSet; name: string }, byUid: boolean, move: boolean): Promise<Completion> {
  const sel = s.selected!;
  if (!byUid && !sel.inRange(a.set)) throw bad('Invalid message sequence number');
  if (move && sel.readOnly) return { status: 'NO', code: 'READ-ONLY', text: 'Mailbox is read-only' };
  let dest;
  try {
    dest = await s.deps.store.openMailbox(s.user!, a.name);
  } catch (e) {
    if (isMailfleetError(e, 'MAILBOX_NOT_FOUND')) return { status: 'NO', code: 'TRYCREATE', text: 'No such mailbox' };
    throw e;
  }
  try {
    const msgs = sel.resolve(a.set, byUid);
    if (msgs.length === 0) return { text: `${move ? 'MOVE' : 'COPY'} completed, nothing to do` };
    const bytes = msgs.reduce((n, m) => n + m.rec.size, 0);
    const over = move ? undefined : await overQuota(s, bytes, msgs.length);
    if (over) return over;
    const newUids = await dest.mailbox.copyFrom(sel.mailbox, msgs.map((m) => m.rec));
    dest.changed();
    if (!move) await quotaAdded(s, bytes, newUids.length);
    const code = `COPYUID ${dest.mailbox.uidValidity} ${formatSet(msgs.slice(0, newUids.length).map((m) => m.uid))} ${formatSet(newUids)}`;
    if (!move) return { code, text: 'COPY completed' };
    // RFC 6851: COPYUID goes in an untagged OK before the EXPUNGEs.
    s.write(`* OK [${code}] Moved\r\n`);
    // Into the same folder too: the copies got new UIDs, so the originals go (Dovecot does the same);
    // keeping them doubled the message on every retry.
    await sel.mailbox.expunge(msgs.map((m) => m.uid));
    sel.handle.changed();
    return { text: 'MOVE completed' };
  } finally {
    dest.release();
  }
}

export const copy = defineCommand({
  name: 'COPY',
  states: SELECTED,
  parse: parseCopy,
  handler: (s, a) => copyMessages(s, a, false, false),
});

export const uidCopy = defineCommand({
  name: 'UID COPY',
  states: SELECTED,
  parse: parseCopy,
  handler: (s, a) => copyMessages(s, a, true, false),
});
