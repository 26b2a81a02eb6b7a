import { AUTHENTICATED, defineCommand } from '../command.js';
import { Args } from '../args.js';

export const namespace = defineCommand({
  name: 'NAMESPACE',
  states: AUTHENTICATED,
  parse: (t) => new Args(t).end(),
  async handler(s) {
    s.write('* NAMESPACE (("" ".")) NIL NIL\r\n');
    return { text: 'NAMESPACE completed' };
  },
});
