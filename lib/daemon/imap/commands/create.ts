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
    const raw = tok.t === 'atom' ? tok.v : tok.t === 'string' ? tok.v.toString('latin1') : '';
    const name = new Args([{ t: 'atom', v: raw.endsWith(DELIMITER) ? raw.slice(0, -1) : raw }]).mailbox();
    a.optionalList();
    a.end();
    return name;
  },
  async handler(s, name) {
    await s.deps.store.create(s.user!, name);
    return { text: 'CREATE completed' };
  },
});
