import { AUTHENTICATED, defineCommand } from '../command.js';
import { Args } from '../args.js';

/**
 * SETQUOTA (RFC 9208 §6.1): quotas are the operator's (spec, directory, `mailfleet quota set`), so a user
 * is not permitted to change them: NO [NOPERM], as the RFC has servers answer an unpermitted SETQUOTA.
 */
export const setquota = defineCommand({
  name: 'SETQUOTA',
  states: AUTHENTICATED,
  parse(t) {
    const a = new Args(t);
    a.astring('quota root');
    a.list('resource limits');
    a.end();
    return {};
  },
  handler: async () => ({ status: 'NO', code: 'NOPERM', text: 'Quotas are set by the administrator' }),
});
