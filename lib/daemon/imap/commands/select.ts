import { AUTHENTICATED, defineCommand, type Completion } from '../command.js';
import { Args, bad, type WorkLimits } from '../args.js';
import { modesOf, parseSelectParams, type SelectParams } from '../condstore.js';
import type { Token } from '../parser.js';
import { SelectedMailbox } from '../selected.js';
import type { ImapSession } from '../session.js';
import { qresyncLines } from '../qresync.js';
import { isRev2, mailboxWire } from '../rev2.js';
import { DELIMITER } from '../../../store/mailbox/names.js';

export interface SelectArgs {
  readonly name: string;
  /** (CONDSTORE), (QRESYNC (…)) — RFC 7162. */
  readonly params: SelectParams;
}

export function parseSelect(t: readonly Token[], limits: WorkLimits): SelectArgs {
  const a = new Args(t, limits);
  const name = a.mailbox();
  const params = parseSelectParams(a.left > 0 ? a.list('select parameters') : undefined, limits.maxSequenceSetRanges);
  a.end();
  return { name, params };
}

/** SELECT and EXAMINE: open the shared mailbox, report its state, keep a private sequence view. */
export async function openSelected(s: ImapSession, args: SelectArgs, readOnly: boolean): Promise<Completion> {
  const { name, params } = args;
  const modes = modesOf(s);
  // RFC 7162 §3.2.5: QRESYNC parameters only after ENABLE QRESYNC.
  if (params.qresync && !modes.qresync) throw bad('QRESYNC is not enabled');
  const rev2 = isRev2(s);
  // RFC 9051 §6.3.2: closing the selected mailbox by selecting another is announced with [CLOSED].
  if (rev2 && s.selected) s.write('* OK [CLOSED] Previous mailbox closed\r\n');
  s.deselect();
  const handle = await s.deps.store.openMailbox(s.user!, name);
  // SELECT (CONDSTORE) and SELECT (QRESYNC …) enable CONDSTORE for the connection (RFC 7162 §3.1).
  if (params.condstore || params.qresync) modes.condstore = true;
  const sel = new SelectedMailbox(handle, readOnly, modes);
  const mb = sel.mailbox;
  // SELECT claims the messages nobody has seen (they are \Recent to this session only); EXAMINE does not.
  try {
    await sel.claimRecent();
  } catch (e) {
    handle.release();
    throw e;
  }
  // Claiming may have taken in messages that arrived meanwhile: the view starts from the claimed state.
  sel.uids = mb.messages.map((m) => m.uid);
  const lines = [...sel.flagLines(), `* ${sel.uids.length} EXISTS`];
  sel.reportedRecent = sel.recentCount;
  if (!rev2) lines.push(`* ${sel.reportedRecent} RECENT`);
  lines.push(`* OK [UIDVALIDITY ${mb.uidValidity}] UIDs valid`, `* OK [UIDNEXT ${mb.nextUid}] Predicted next UID`);
  if (rev2) {
    // RFC 9051 §6.3.2: a LIST response for the mailbox instead of RECENT and UNSEEN (both removed).
    lines.push(`* LIST () "${DELIMITER}" ${mailboxWire(s, name)}`);
  } else {
    const firstUnseen = mb.messages.findIndex((m) => !m.letters.includes('S'));
    if (firstUnseen >= 0) lines.push(`* OK [UNSEEN ${firstUnseen + 1}] First unseen`);
  }
  // RFC 7162 §3.1.2.1: a server with persistent modseqs sends it on every SELECT/EXAMINE. (Dovecot only
  // once a client has used CONDSTORE on the mailbox: it starts tracking modseqs then; the index always does.)
  lines.push(`* OK [HIGHESTMODSEQ ${mb.modseq}] Highest`);
  if (params.qresync) lines.push(...qresyncLines(sel, params.qresync));
  s.write(lines.join('\r\n') + '\r\n');
  s.selected = sel;
  s.state = 'selected';
  return { code: readOnly ? 'READ-ONLY' : 'READ-WRITE', text: `${readOnly ? 'EXAMINE' : 'SELECT'} completed` };
}

export const select = defineCommand({
  name: 'SELECT',
  states: AUTHENTICATED,
  parse: parseSelect,
  handler: (s, a) => openSelected(s, a, false),
  flushAfter: false,
});
