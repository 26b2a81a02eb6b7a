/** SMTP's ProtocolModule: one SmtpFrontEnd per daemon context, shared by smtp, submission and submissions. */
import type { DaemonContext, ProtocolModule } from '../context.js';
import { SmtpFrontEnd } from './front-end.js';
import { formatReply } from './replies.js';
import { quotaOf } from '../../quota/index.js';

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
  // The outbound queue's runner must retry what a previous run left, before any client connects.
  start: (ctx) => {
    if (ctx.config.smtp.relay) frontEndOf(ctx);
    // A damaged quotas-state.json stops the daemon here, not at the first RCPT.
    quotaOf(ctx);
  },
  stop: async (ctx) => {
    await frontEnds.get(ctx)?.close();
    frontEnds.delete(ctx);
  },
};
