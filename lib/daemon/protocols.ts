/**
 * Which session module speaks each wire protocol. One line per protocol; server.ts skips (and logs)
 * sockets whose protocol has no module yet.
 */
import type { Protocol } from '../spec/schema.js';
import type { ProtocolModule } from './context.js';
import { smtpModule } from './smtp/module.js';
import { imapModule } from './imap/module.js';
import { pop3Module } from './pop3/module.js';

export const PROTOCOL_MODULES: ReadonlyMap<Protocol, ProtocolModule> = new Map<Protocol, ProtocolModule>([
  ['smtp', smtpModule],
  ['submission', smtpModule],
  ['submissions', smtpModule],
  ['imap', imapModule],
  ['imaps', imapModule],
  ['pop3', pop3Module],
  ['pop3s', pop3Module],
]);
