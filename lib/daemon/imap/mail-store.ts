/**
 * One MailStore per daemon, shared by IMAP and POP3 (one index per mailbox in the process), fed by the
 * delivery hook so IDLE sessions hear about same-node deliveries at once.
 */
import type { DaemonContext } from '../context.js';
import { maildirPath } from '../../store/maildir/paths.js';
import { decodeMutf7 } from '../../store/mailbox/mutf7.js';
import { LocalMailboxEvents, MailStore } from '../../store/mailbox/index.js';

const stores = new WeakMap<DaemonContext, MailStore>();

export function mailStoreOf(ctx: DaemonContext): MailStore {
  let s = stores.get(ctx);
  if (!s) {
    const events = new LocalMailboxEvents();
    s = new MailStore({
      maildirOf: (address) => maildirPath(ctx.mailRoot, address),
      events,
      pollIntervalMs: ctx.config.imap.pollIntervalSeconds * 1000,
    });
    // Delivery names folders in their on-disk (modified UTF-7) form; events use IMAP names.
    ctx.deliveryListeners.add((address, folder) => events.publish(address, folder === undefined ? undefined : (decodeMutf7(folder) ?? folder)));
    stores.set(ctx, s);
  }
  return s;
}
