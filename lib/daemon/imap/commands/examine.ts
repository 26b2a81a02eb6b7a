import { AUTHENTICATED, defineCommand } from '../command.js';
import { openSelected, parseSelect } from './select.js';

export const examine = defineCommand({
  name: 'EXAMINE',
  states: AUTHENTICATED,
  parse: parseSelect,
  handler: (s, a) => openSelected(s, a, true),
  flushAfter: false,
});
