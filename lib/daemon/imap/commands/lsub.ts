import { AUTHENTICATED, defineCommand } from '../command.js';
import { listReply, parseList } from './list.js';

export const lsub = defineCommand({
  name: 'LSUB',
  states: AUTHENTICATED,
  parse: parseList,
  async handler(s, a) {
    await listReply(s, a, true);
    return { text: 'LSUB completed' };
  },
});
