/** IMAP's ProtocolModule (imap and imaps): one ImapDeps per daemon context, one ImapSession per connection. */
import type { DaemonContext, ProtocolModule } from '../context.js';
import { mailStoreOf } from './mail-store.js';
import { busyText, REPLY } from './replies.js';
import { ImapSession, type ImapDeps } from './session.js';

const depsByCtx = new WeakMap<DaemonContext, ImapDeps>();

function depsOf(ctx: DaemonContext): ImapDeps {
  let d = depsByCtx.get(ctx);
  if (!d) {
    d = {
      hostname: ctx.config.hostname,
      settings: ctx.config.imap,
      directory: ctx.directory,
      admission: ctx.admission,
      store: mailStoreOf(ctx),
      tls: ctx.tls,
      logger: ctx.logger.child({ protocol: 'imap' }),
    };
    depsByCtx.set(ctx, d);
  }
  return d;
}

export const imapModule: ProtocolModule = {
  busy: (socket, text) => {
    socket.write(busyText(text));
  },
  handle: (conn, ctx) => {
    const session = new ImapSession(conn, depsOf(ctx));
    conn.onShutdown(() => session.bye(REPLY.shutdown));
  },
};
