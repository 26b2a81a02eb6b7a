/** IMAP's ProtocolModule (imap and imaps): shared session deps per daemon context, one ImapSession per connection. */
import type { ProtocolModule } from '../context.js';
import { mailSessionDeps } from '../mail-session-deps.js';
import { busyText, REPLY } from './replies.js';
import { ImapSession } from './session.js';

export const imapModule: ProtocolModule = {
  busy: (socket, text) => {
    socket.write(busyText(text));
  },
  handle: (conn, ctx) => {
    const session = new ImapSession(conn, mailSessionDeps(ctx, 'imap'));
    conn.onShutdown(() => session.bye(REPLY.shutdown));
  },
};
