import { AUTHENTICATED, defineCommand } from '../command.js';
import { Args, bad, flagList, formatSet } from '../args.js';
import { isMailfleetError } from '../../../errors.js';
import { wireSizeSliced } from '../../../store/mailbox/mailbox.js';
import { overQuota, quotaAdded } from '../quota.js';

interface AppendMessage {
  readonly flags: readonly string[];
  readonly date?: Date;
  readonly message: Buffer;
}

/**
 * APPEND with APPENDUID (UIDPLUS, RFC 4315), MULTIAPPEND (RFC 3502: several messages in one command,
 * stored all or none) and BINARY's literal8 message (RFC 3516 `~{n}`). The parser has already bounded
 * the command: each literal by imap.maxLiteralBytes, all literals of the command together by the same
 * limit, at most 64 literals, and every byte reserved in imap.maxLiteralBytesInFlight before it was read.
 */
export const append = defineCommand({
  name: 'APPEND',
  states: AUTHENTICATED,
  parse(t) {
    const a = new Args(t);
    const name = a.mailbox();
    const messages: AppendMessage[] = [];
    do {
      const fl = a.optionalList();
      const flags = fl ? flagList(fl) : [];
      let date: Date | undefined;
      const next = a.peek();
      if (next?.t === 'string' && !next.literal) date = a.date('date-time', true);
      const m = a.peek();
      // RFC 3502 §6.3.11: each message is a literal (a quoted string is accepted for the first, as before).
      if (messages.length > 0 && !(m?.t === 'string' && m.literal)) throw bad('Expected message literal');
      const message = a.literalOrString('message literal');
      messages.push({ flags, date, message });
    } while (a.left > 0);
    a.end();
    return { name, messages };
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
      let size = 0;
      for (const m of a.messages) size += await wireSizeSliced(m.message);
      const over = await overQuota(s, size, a.messages.length);
      if (over) return over;
      const items = [];
      for (const m of a.messages) items.push({ data: m.message, letters: await h.mailbox.lettersFor(m.flags, true), date: m.date ?? new Date() });
      // Appending to the folder it has selected read-write, the session claims the new messages as
      // \Recent in the APPEND's own locked pass: its update after this command would claim them in one
      // more (lock, scan, list write, fsync).
      const sel = s.selected;
      const claim = sel !== undefined && !sel.readOnly && sel.mailbox === h.mailbox;
      const { uids, claimed } = await h.mailbox.appendClaiming(items, claim);
      if (claim) sel.noteRecent(claimed);
      h.changed();
      await quotaAdded(s, size, a.messages.length);
      return { code: `APPENDUID ${h.mailbox.uidValidity} ${formatSet(uids)}`, text: 'APPEND completed' };
    } finally {
      h.release();
    }
  },
});
