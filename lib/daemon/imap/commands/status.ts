import { AUTHENTICATED, defineCommand } from '../command.js';
import { Args, bad } from '../args.js';
import { nameToWire } from '../../../store/mailbox/names.js';
import { istring } from '../wire.js';
import { enableCondstore } from '../condstore.js';

// --- CONDSTORE (RFC 7162 §3.1.1): HIGHESTMODSEQ is a status item, and asking for it enables CONDSTORE.
const CONDSTORE_ITEMS = ['HIGHESTMODSEQ'] as const;
// --- end CONDSTORE

const ITEMS = ['MESSAGES', 'RECENT', 'UIDNEXT', 'UIDVALIDITY', 'UNSEEN', ...CONDSTORE_ITEMS] as const;
type Item = (typeof ITEMS)[number];

export const status = defineCommand({
  name: 'STATUS',
  states: AUTHENTICATED,
  parse(t) {
    const a = new Args(t);
    const name = a.mailbox();
    const items = a.list('status items').map((x) => {
      const v = x.t === 'atom' ? x.v.toUpperCase() : '';
      if (!(ITEMS as readonly string[]).includes(v)) throw bad(`Unknown status item ${v}`);
      return v as Item;
    });
    a.end();
    return { name, items };
  },
  async handler(s, a) {
    const h = await s.deps.store.openMailbox(s.user!, a.name);
    if (a.items.includes('HIGHESTMODSEQ')) enableCondstore(s); // CONDSTORE
    try {
      const mb = h.mailbox;
      const values: Record<Item, number> = {
        MESSAGES: mb.exists,
        RECENT: mb.unclaimedRecent,
        UIDNEXT: mb.nextUid,
        UIDVALIDITY: mb.uidValidity,
        UNSEEN: mb.messages.filter((m) => !m.letters.includes('S')).length,
        HIGHESTMODSEQ: mb.modseq, // CONDSTORE
      };
      const wire = istring(nameToWire(a.name));
      s.write(`* STATUS ${typeof wire === 'string' ? wire : nameToWire(a.name)} (${a.items.map((i) => `${i} ${values[i]}`).join(' ')})\r\n`);
    } finally {
      h.release();
    }
    return { text: 'STATUS completed' };
  },
});
