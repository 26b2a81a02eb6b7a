import { AUTHENTICATED, defineCommand } from '../command.js';
import { Args, flagList } from '../args.js';
import { isMailfleetError } from '../../../errors.js';
import { wireSizeSliced } from '../../../store/mailbox/mailbox.js';
import { overQuota, quotaAdded } from '../quota.js';

/** APPEND with APPENDUID (UIDPLUS, RFC 4315). */
export const append = defineCommand({
  name: 'APPEND',
  states: AUTHENTICATED,
  parse(t) {
    const a = new Args(t);
    const name = a.mailbox();
    const fl = a.optionalList();
    const flags = fl ? flagList(fl) : [];
    let date: Date | undefined;
    const next = a.peek();
    if (next?.t === 'string' && !next.literal) date = a.date('date-time', true);
    const message = a.literalOrString('message literal');
    a.end();
    return { name, flags, date, message };
  },
  async handler(s, a) {
    let h;
    try {
      h = await s.deps.store.openMailbox(s.user!, a.name);
    } catch (e) {
      if (isMailfleetError(e, 'MAILBOX_NOT_FOUND')) return { status: 'NO', code: 'TRYCREATE', text: 'No such mailbox' };
      throw e;
    }
    try {
      const size = await wireSizeSliced(a.message);
      const over = await overQuota(s, size, 1);
      if (over) return over;
      const uid = await h.mailbox.append(a.message, await h.mailbox.lettersFor(a.flags, true), a.date ?? new Date());
      h.changed();
      await quotaAdded(s, size, 1);
      return { code: `APPENDUID ${h.mailbox.uidValidity} ${uid}`, text: 'APPEND completed' };
    } finally {
      h.release();
    }
  },
});
