import { AUTHENTICATED, defineCommand } from '../command.js';
import { parseName } from './subscribe.js';

export const unsubscribe = defineCommand({
  name: 'UNSUBSCRIBE',
  states: AUTHENTICATED,
  parse: parseName,
  async handler(s, name) {
    await s.deps.store.subscribe(s.user!, name, false);
    return { text: 'UNSUBSCRIBE completed' };
  },
});
