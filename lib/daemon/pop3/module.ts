/** POP3's ProtocolModule (pop3 and pop3s). */
import type { DaemonContext, ProtocolModule } from '../context.js';
import { mailStoreOf } from '../imap/mail-store.js';
import { busyText, REPLY } from './replies.js';
import { Pop3Session, type Pop3Deps } from './session.js';

const depsByCtx = new WeakMap<DaemonContext, Pop3Deps>();

function depsOf(ctx: DaemonContext): Pop3Deps {
  let d = depsByCtx.get(ctx);
  if (!d) {
    d = {
      hostname: ctx.config.hostname,
      settings: ctx.config.pop3,
      directory: ctx.directory,
      admission: ctx.admission,
      store: mailStoreOf(ctx),
      tls: ctx.tls,
      logger: ctx.logger.child({ protocol: 'pop3' }),
    };
    depsByCtx.set(ctx, d);
  }
  return d;
}

export const pop3Module: ProtocolModule = {
  busy: (socket, text) => {
    socket.write(busyText(text));
  },
  handle: (conn, ctx) => {
    const session = new Pop3Session(conn, depsOf(ctx));
    conn.onShutdown(() => session.shutdown(REPLY.shutdown));
  },
};
