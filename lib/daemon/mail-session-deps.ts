/**
 * What an IMAP or POP3 session needs from the daemon, built once per daemon context and protocol:
 * both read the same store, directory and admission, and differ only in their settings and log name.
 */
import type { Logger } from '../log.js';
import type { IDirectory } from '../directory/types.js';
import type { IAdmission } from '../limits/types.js';
import type { DaemonConfig } from '../plan/types.js';
import type { DaemonContext } from './context.js';
import { mailStoreOf } from './imap/mail-store.js';
import type { MailStore } from '../store/mailbox/index.js';

export interface MailSessionDeps<S> {
  readonly hostname: string;
  readonly settings: S;
  readonly directory: Pick<IDirectory, 'authenticate'>;
  readonly admission: IAdmission;
  readonly store: MailStore;
  /** Key and certificate for STARTTLS/STLS; without them the upgrade is not offered. */
  readonly tls?: { readonly key: string | Buffer; readonly cert: string | Buffer };
  readonly logger: Logger;
}

type ReadProtocol = 'imap' | 'pop3';
const cache = new WeakMap<DaemonContext, Partial<Record<ReadProtocol, MailSessionDeps<unknown>>>>();

export function mailSessionDeps<P extends ReadProtocol>(ctx: DaemonContext, protocol: P): MailSessionDeps<DaemonConfig[P]> {
  let byProtocol = cache.get(ctx);
  if (!byProtocol) {
    byProtocol = {};
    cache.set(ctx, byProtocol);
  }
  let deps = byProtocol[protocol];
  if (!deps) {
    deps = {
      hostname: ctx.config.hostname,
      settings: ctx.config[protocol],
      directory: ctx.directory,
      admission: ctx.admission,
      store: mailStoreOf(ctx),
      tls: ctx.tls,
      logger: ctx.logger.child({ protocol }),
    };
    byProtocol[protocol] = deps;
  }
  return deps as MailSessionDeps<DaemonConfig[P]>;
}
