import { ANY_STATE, defineCommand } from '../command.js';
import { Args } from '../args.js';
import { REPLY } from '../replies.js';

export const logout = defineCommand({
  name: 'LOGOUT',
  states: ANY_STATE,
  parse: (t) => new Args(t).end(),
  async handler(s, _a, tag) {
    s.write(`${REPLY.logout}\r\n${tag} OK Logout completed\r\n`);
    s.close();
    return undefined;
  },
});
