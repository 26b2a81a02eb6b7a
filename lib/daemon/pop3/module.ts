/** POP3's ProtocolModule (pop3 and pop3s). */
import type { ProtocolModule } from '../context.js';
import { mailSessionDeps } from '../mail-session-deps.js';
import { busyText, REPLY } from './replies.js';
import { Pop3Session } from './session.js';

export const pop3Module: ProtocolModule = {
  busy: (socket, text) => {
    socket.write(busyText(text));
  },
  handle: (conn, ctx) => {
    const session = new Pop3Session(conn, mailSessionDeps(ctx, 'pop3'));
    conn.onShutdown(() => session.shutdown(REPLY.shutdown));
  },
};
