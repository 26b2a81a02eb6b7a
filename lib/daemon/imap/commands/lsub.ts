import { AUTHENTICATED, defineCommand } from '../command.js';
import { bad } from '../args.js';
import { isRev2 } from '../rev2.js';
import { listReply, parseList } from './list.js';

export const lsub = defineCommand({
  name: 'LSUB',
  states: AUTHENTICATED,
  parse: parseList,
  async handler(s, a) {
    // RFC 9051 has no LSUB (Appendix E: LIST (SUBSCRIBED) replaces it).
    if (isRev2(s)) throw bad('LSUB is not an IMAP4rev2 command; use LIST (SUBSCRIBED)');
    await listReply(s, a, true);
    return { text: 'LSUB completed' };
  },
});
