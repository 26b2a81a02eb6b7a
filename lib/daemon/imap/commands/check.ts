import { defineCommand, SELECTED } from '../command.js';
import { Args } from '../args.js';

/** Every change is already on disk when its command completes: CHECK is a NOOP with updates. */
export const check = defineCommand({
  name: 'CHECK',
  states: SELECTED,
  parse: (t) => new Args(t).end(),
  async handler() {
    return { text: 'CHECK completed' };
  },
});
