import { AUTHENTICATED, defineCommand } from '../command.js';
import { Args } from '../args.js';

export const del = defineCommand({
  name: 'DELETE',
  states: AUTHENTICATED,
  parse(t) {
    const a = new Args(t);
    const name = a.mailbox();
    a.end();
    return name;
  },
  async handler(s, name) {
    if (s.selected?.mailbox.name === name) s.deselect();
    await s.deps.store.delete(s.user!, name);
    return { text: 'DELETE completed' };
  },
});
