import { defineCommand, SELECTED } from '../command.js';
import { Args } from '../args.js';

/** CLOSE: expunges \Deleted silently (unless read-only) and leaves the mailbox. */
export const close = defineCommand({
  name: 'CLOSE',
  states: SELECTED,
  parse: (t) => new Args(t).end(),
  async handler(s) {
    const sel = s.selected!;
    if (!sel.readOnly) {
      const doomed = sel.mailbox.messages.filter((m) => m.letters.includes('T')).map((m) => m.uid);
      if (doomed.length > 0) {
        await sel.mailbox.expunge(doomed);
        sel.handle.changed();
      }
    }
    s.deselect();
    return { text: 'CLOSE completed' };
  },
});
