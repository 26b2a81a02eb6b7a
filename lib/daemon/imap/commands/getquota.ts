import { AUTHENTICATED, defineCommand } from '../command.js';
import { Args } from '../args.js';
import { QUOTA_ROOT, quotaLine } from '../quota.js';

/** GETQUOTA (RFC 9208 §6.2): the user's one quota root "". */
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
    if (a.root !== QUOTA_ROOT) return { status: 'NO', code: 'NONEXISTENT', text: 'No such quota root' };
    s.write(await quotaLine(s.deps.quota, s.user!));
    return { text: 'GETQUOTA completed' };
  },
});
