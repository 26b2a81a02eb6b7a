import { AUTHENTICATED, defineCommand } from '../command.js';
import { Args, bad } from '../args.js';
import type { Token } from '../parser.js';
import type { ImapSession } from '../session.js';
import { enableCondstore } from '../condstore.js';
import { isRev2, mailboxWire } from '../rev2.js';

// --- CONDSTORE (RFC 7162 §3.1.1): HIGHESTMODSEQ is a status item, and asking for it enables CONDSTORE.
const CONDSTORE_ITEMS = ['HIGHESTMODSEQ'] as const;
// --- end CONDSTORE
// --- STATUS=SIZE (RFC 8438): SIZE is the sum of the messages' RFC822.SIZE, from the index. ---
const SIZE_ITEMS = ['SIZE'] as const;
// --- end STATUS=SIZE ---
// --- IMAP4rev2 (RFC 9051 §6.3.11): DELETED, the number of \Deleted messages; RECENT is gone in rev2. ---
const REV2_ITEMS = ['DELETED'] as const;
// --- end IMAP4rev2 ---
const ITEMS = ['MESSAGES', 'RECENT', 'UIDNEXT', 'UIDVALIDITY', 'UNSEEN', ...CONDSTORE_ITEMS, ...SIZE_ITEMS, ...REV2_ITEMS] as const;
export type StatusItem = (typeof ITEMS)[number];

/** A status item list: `(MESSAGES UNSEEN …)`; STATUS and LIST … RETURN (STATUS (…)) (RFC 5819) share it. */
export function parseStatusItems(list: readonly Token[]): StatusItem[] {
  return list.map((x) => {
    const v = x.t === 'atom' ? x.v.toUpperCase() : '';
    if (!(ITEMS as readonly string[]).includes(v)) throw bad(`Unknown status item ${v}`);
    return v as StatusItem;
  });
}

/** Items valid in this session: DELETED only in IMAP4rev2, RECENT only in IMAP4rev1 (BAD otherwise). */
export function checkStatusItems(s: ImapSession, items: readonly StatusItem[]): void {
  const rev2 = isRev2(s);
  const wrong = items.find((i) => (i === 'DELETED' && !rev2) || (i === 'RECENT' && rev2));
  if (wrong) throw bad(`Unknown status item ${wrong}`);
}

/** Writes `* STATUS name (…)` for one mailbox (throws MAILBOX_NOT_FOUND when it does not exist). */
export async function writeStatus(s: ImapSession, name: string, items: readonly StatusItem[]): Promise<void> {
  const h = await s.deps.store.openMailbox(s.user!, name);
  if (items.includes('HIGHESTMODSEQ')) enableCondstore(s); // CONDSTORE
  try {
    const mb = h.mailbox;
    const values: Record<StatusItem, () => number> = {
      MESSAGES: () => mb.exists,
      RECENT: () => mb.unclaimedRecent,
      UIDNEXT: () => mb.nextUid,
      UIDVALIDITY: () => mb.uidValidity,
      UNSEEN: () => mb.messages.filter((m) => !m.letters.includes('S')).length,
      HIGHESTMODSEQ: () => mb.modseq, // CONDSTORE
      // --- STATUS=SIZE (RFC 8438) ---
      SIZE: () => mb.messages.reduce((n, m) => n + m.size, 0),
      // --- end STATUS=SIZE ---
      DELETED: () => mb.messages.filter((m) => m.letters.includes('T')).length, // IMAP4rev2
    };
    s.write(`* STATUS ${mailboxWire(s, name)} (${items.map((i) => `${i} ${values[i]()}`).join(' ')})\r\n`);
  } finally {
    h.release();
  }
}

export const status = defineCommand({
  name: 'STATUS',
  states: AUTHENTICATED,
  parse(t) {
    const a = new Args(t);
    const name = a.mailbox();
    const items = parseStatusItems(a.list('status items'));
    a.end();
    return { name, items };
  },
  async handler(s, a) {
    checkStatusItems(s, a.items);
    await writeStatus(s, a.name, a.items);
    return { text: 'STATUS completed' };
  },
});
