import { ANY_STATE, defineCommand } from '../command.js';
import { Args, bad } from '../args.js';

/** ID (RFC 2971): the client's fields are read and ignored; the server names itself. */
export const id = defineCommand({
  name: 'ID',
  states: ANY_STATE,
  parse(t) {
    const a = new Args(t);
    const p = a.next('parameter list');
    if (!(p.t === 'list' || (p.t === 'atom' && p.v.toUpperCase() === 'NIL'))) throw bad('Expected parameter list or NIL');
    a.end();
  },
  async handler(s) {
    s.write('* ID ("name" "mailfleet" "vendor" "mailfleet")\r\n');
    return { text: 'ID completed' };
  },
});
