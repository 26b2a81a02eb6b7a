import { AUTHENTICATED, defineCommand } from '../command.js';
import { Args } from '../args.js';

export const rename = defineCommand({
  name: 'RENAME',
  states: AUTHENTICATED,
  parse(t) {
    const a = new Args(t);
    const from = a.mailbox();
    const to = a.mailbox();
    a.end();
    return { from, to };
  },
  async handler(s, a) {
    await s.deps.store.rename(s.user!, a.from, a.to);
    return { text: 'RENAME completed' };
  },
});
