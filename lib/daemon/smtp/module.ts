/** SMTP's ProtocolModule: one SmtpFrontEnd per daemon context, shared by smtp, submission and submissions. */
import type { DaemonContext, ProtocolModule } from '../context.js';
import { closeMailStore, mailEventsOf } from '../imap/mail-store.js';
import { SmtpFrontEnd } from './front-end.js';
import { formatReply } from './replies.js';

const frontEnds = new WeakMap<DaemonContext, SmtpFrontEnd>();

function frontEndOf(ctx: DaemonContext): SmtpFrontEnd {
  let f = frontEnds.get(ctx);
  if (!f) {
    f = new SmtpFrontEnd(ctx);
    frontEnds.set(ctx, f);
  }
  return f;
}

export const smtpModule: ProtocolModule = {
  busy: (socket, text) => {
    socket.write(`${formatReply('PORT_FULL', text)}\r\n`);
  },
  handle: (conn, ctx) => frontEndOf(ctx).handle(conn),
  // With Redis, deliveries are published to IMAP IDLE sessions on other nodes, also from an SMTP-only node.
  start: (ctx) => {
    if (ctx.config.redis) mailEventsOf(ctx);
    // The outbound queue's runner must retry what a previous run left, before any client connects.
    if (ctx.config.smtp.relay) frontEndOf(ctx);
  },
  stop: async (ctx) => {
    await frontEnds.get(ctx)?.close();
    frontEnds.delete(ctx);
    await closeMailStore(ctx);
  },
};
