import { AUTHENTICATED, defineCommand } from '../command.js';
import { Args } from '../args.js';
import { mailboxWire } from '../rev2.js';
import { quotaRootLines } from '../quota.js';

/** GETQUOTAROOT (RFC 9208 §6.3): every folder of a user belongs to the root "", and to the domain's when it has a total. */
export const getquotaroot = defineCommand({
  name: 'GETQUOTAROOT',
  states: AUTHENTICATED,
  parse(t) {
    const a = new Args(t);
    const name = a.mailbox();
    a.end();
    return { name };
  },
  async handler(s, a) {
    if (!(await s.deps.store.exists(s.user!, a.name))) return { status: 'NO', code: 'NONEXISTENT', text: 'No such mailbox' };
    s.write(await quotaRootLines(s.deps.quota, s.user!, mailboxWire(s, a.name)));
    return { text: 'GETQUOTAROOT completed' };
  },
});
