import { AUTHENTICATED, defineCommand } from '../command.js';
import { Args } from '../args.js';
import { DELIMITER } from '../../../store/mailbox/names.js';

export const create = defineCommand({
  name: 'CREATE',
  states: AUTHENTICATED,
  parse(t) {
    const a = new Args(t);
    // A trailing delimiter only says "will have children" (RFC 3501 §6.3.3).
    const tok = a.next('mailbox name');
    // Octets kept as sent: an 8-bit name is UTF-8 (IMAP4rev2, args.ts mailbox()).
    const raw = tok.t === 'atom' ? Buffer.from(tok.v, 'latin1') : tok.t === 'string' ? tok.v : Buffer.alloc(0);
    const trimmed = raw.length > 0 && raw[raw.length - 1] === DELIMITER.charCodeAt(0) ? raw.subarray(0, -1) : raw;
    const name = new Args([{ t: 'string', v: trimmed, literal: false }]).mailbox();
    a.optionalList();
    a.end();
    return name;
  },
  async handler(s, name) {
    await s.deps.store.create(s.user!, name);
    return { text: 'CREATE completed' };
  },
});
