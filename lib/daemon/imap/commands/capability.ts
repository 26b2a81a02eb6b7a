import { ANY_STATE, defineCommand } from '../command.js';
import { Args } from '../args.js';

export const capability = defineCommand({
  name: 'CAPABILITY',
  states: ANY_STATE,
  parse: (t) => new Args(t).end(),
  async handler(s) {
    s.write(`* CAPABILITY ${s.capabilities()}\r\n`);
    return { text: 'Capability completed' };
  },
});
