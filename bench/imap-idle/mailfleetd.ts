/**
 * The mailfleetd side of bench/imap-idle: the IMAP front-end with its real session, MailStore and
 * in-process admission, on one port, with `users` accounts user<i>@example.com.
 * Usage: mailfleetd.ts <port> <dataDir> <users> <password>
 */
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ImapSession, type ImapDeps } from '../../lib/daemon/imap/index.js';
import { LocalAdmission } from '../../lib/limits/local.js';
import { silentLogger } from '../../lib/log.js';
import { specSchema } from '../../lib/spec/schema.js';
import { LocalMailboxEvents, MailStore } from '../../lib/store/mailbox/index.js';

const [port, dataDir, users, password] = process.argv.slice(2) as [string, string, string, string];
const spec = specSchema.parse({ platform: { name: 'bench' }, domains: [{ name: 'example.com' }], imap: { allowInsecureAuth: true } });
const deps: ImapDeps = {
  hostname: 'bench.localhost',
  settings: spec.imap,
  directory: {
    async authenticate(login, pw) {
      const [localPart, domain] = login.split('@') as [string, string];
      const n = Number(localPart.replace('user', ''));
      if (pw !== password || !(n >= 0 && n < Number(users))) return { ok: false, reason: 'bad-credentials' };
      return { ok: true, user: { address: login, localPart, domain } };
    },
  },
  admission: new LocalAdmission(() => 1_000_000),
  store: new MailStore({ maildirOf: (a) => join(dataDir, a.split('@')[1]!, a.split('@')[0]!, 'Maildir'), events: new LocalMailboxEvents() }),
  logger: silentLogger,
};
let n = 0;
createServer((socket) => {
  new ImapSession({ id: String(++n), socket, remoteAddress: socket.remoteAddress ?? '', secure: false }, deps);
}).listen(Number(port), '127.0.0.1');

// The bench asks for a full GC before each reading (run with --expose-gc) so the figure is live memory,
// not garbage V8 has not collected yet.
process.on('SIGUSR2', () => (globalThis as { gc?: () => void }).gc?.());
