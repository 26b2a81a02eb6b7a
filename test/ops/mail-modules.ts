/**
 * The daemon's protocol modules for tests, with IMAP and POP3 wired from their sessions (lib/daemon/imap,
 * lib/daemon/pop3) while lib/daemon/protocols.ts does not register them yet. Once it does, its modules win.
 */
import type { DaemonContext, ProtocolModule } from '../../lib/daemon/context.js';
import { ImapSession, busyText as imapBusy } from '../../lib/daemon/imap/index.js';
import { Pop3Session, busyText as pop3Busy } from '../../lib/daemon/pop3/index.js';
import { PROTOCOL_MODULES } from '../../lib/daemon/protocols.js';
import { LocalMailboxEvents, MailStore } from '../../lib/store/mailbox/index.js';
import { maildirPath } from '../../lib/store/maildir/paths.js';
import type { Protocol } from '../../lib/spec/schema.js';

const stores = new WeakMap<DaemonContext, MailStore>();
function storeOf(ctx: DaemonContext): MailStore {
  let s = stores.get(ctx);
  if (!s) {
    s = new MailStore({
      maildirOf: (a) => maildirPath(ctx.mailRoot, a),
      events: new LocalMailboxEvents(),
      pollIntervalMs: 60_000,
    });
    stores.set(ctx, s);
  }
  return s;
}

const imap: ProtocolModule = {
  busy: (socket, text) => socket.write(imapBusy(text)),
  handle: (conn, ctx) => {
    new ImapSession(conn, {
      hostname: ctx.config.hostname,
      settings: ctx.config.imap,
      directory: ctx.directory,
      admission: ctx.admission,
      store: storeOf(ctx),
      tls: ctx.tls,
      logger: conn.logger,
    });
  },
};

const pop3: ProtocolModule = {
  busy: (socket, text) => socket.write(pop3Busy(text)),
  handle: (conn, ctx) => {
    new Pop3Session(conn, {
      hostname: ctx.config.hostname,
      settings: ctx.config.pop3,
      directory: ctx.directory,
      admission: ctx.admission,
      store: storeOf(ctx),
      tls: ctx.tls,
      logger: conn.logger,
    });
  },
};

export function mailModules(): ReadonlyMap<Protocol, ProtocolModule> {
  const m = new Map(PROTOCOL_MODULES);
  for (const [p, mod] of [
    ['imap', imap],
    ['imaps', imap],
    ['pop3', pop3],
    ['pop3s', pop3],
  ] as const)
    if (!m.has(p)) m.set(p, mod);
  return m;
}
