import { AUTHENTICATED, defineCommand } from '../command.js';
import { openSelected, parseMailboxOnly } from './select.js';

export const examine = defineCommand({
  name: 'EXAMINE',
  states: AUTHENTICATED,
  parse: parseMailboxOnly,
  handler: (s, name) => openSelected(s, name, true),
  flushAfter: false,
});
