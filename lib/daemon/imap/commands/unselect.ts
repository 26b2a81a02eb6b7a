import { defineCommand, SELECTED } from '../command.js';
import { Args } from '../args.js';

/** UNSELECT (RFC 3691): leave without expunging. */
export const unselect = defineCommand({
  name: 'UNSELECT',
  states: SELECTED,
  parse: (t) => new Args(t).end(),
  async handler(s) {
    s.deselect();
    return { text: 'UNSELECT completed' };
  },
});
