import { ANY_STATE, defineCommand } from '../command.js';
import { Args } from '../args.js';

/** Untagged updates (new mail, flag changes, expunges) are sent by the session before the OK. */
export const noop = defineCommand({
  name: 'NOOP',
  states: ANY_STATE,
  parse: (t) => new Args(t).end(),
  async handler() {
    return { text: 'NOOP completed' };
  },
});
