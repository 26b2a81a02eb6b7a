import { AUTHENTICATED, defineCommand } from '../command.js';
import { Args } from '../args.js';
import { quotaLine } from '../quota.js';

/** GETQUOTA (RFC 9208 §6.2): the user's root "" or their domain's total (lib/daemon/imap/quota.ts). */
export const getquota = defineCommand({
  name: 'GETQUOTA',
  states: AUTHENTICATED,
  parse(t) {
    const a = new Args(t);
    const root = a.astring('quota root');
    a.end();
    return { root };
  },
  async handler(s, a) {
    const line = await quotaLine(s.deps.quota, s.user!, a.root);
    if (!line) return { status: 'NO', code: 'NONEXISTENT', text: 'No such quota root' };
    s.write(line);
    return { text: 'GETQUOTA completed' };
  },
});
