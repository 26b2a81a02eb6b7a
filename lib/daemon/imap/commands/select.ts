import { AUTHENTICATED, defineCommand, type Completion } from '../command.js';
import { Args } from '../args.js';
import type { Token } from '../parser.js';
import { SelectedMailbox } from '../selected.js';
import type { ImapSession } from '../session.js';

export function parseMailboxOnly(t: readonly Token[]): string {
  const a = new Args(t);
  const name = a.mailbox();
  if (a.left > 0) a.optionalList(); // select parameters (CONDSTORE …) are not supported: ignored
  a.end();
  return name;
}

/** SELECT and EXAMINE: open the shared mailbox, report its state, keep a private sequence view. */
export async function openSelected(s: ImapSession, name: string, readOnly: boolean): Promise<Completion> {
  s.deselect();
  const handle = await s.deps.store.openMailbox(s.user!, name);
  const sel = new SelectedMailbox(handle, readOnly);
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
  const lines = [
    ...sel.flagLines(),
    `* ${sel.uids.length} EXISTS`,
    `* ${(sel.reportedRecent = sel.recentCount)} RECENT`,
    `* OK [UIDVALIDITY ${mb.uidValidity}] UIDs valid`,
    `* OK [UIDNEXT ${mb.nextUid}] Predicted next UID`,
  ];
  const firstUnseen = mb.messages.findIndex((m) => !m.letters.includes('S'));
  if (firstUnseen >= 0) lines.push(`* OK [UNSEEN ${firstUnseen + 1}] First unseen`);
  s.write(lines.join('\r\n') + '\r\n');
  s.selected = sel;
  s.state = 'selected';
  return { code: readOnly ? 'READ-ONLY' : 'READ-WRITE', text: `${readOnly ? 'EXAMINE' : 'SELECT'} completed` };
}

export const select = defineCommand({
  name: 'SELECT',
  states: AUTHENTICATED,
  parse: parseMailboxOnly,
  handler: (s, name) => openSelected(s, name, false),
  flushAfter: false,
});
