/**
 * What an IMAP or POP3 session needs from the daemon, built once per daemon context and protocol:
 * both read the same store and login gate (which takes the admission leases), and differ only in their
 * settings and log name.
 */
import type { Logger } from '../log.js';
import type { DaemonConfig } from '../plan/types.js';
import type { DaemonContext } from './context.js';
import type { SaslMechanisms } from '../auth/sasl.js';
import type { ILoginGate } from './login-gate.js';
import { mailStoreOf } from './imap/mail-store.js';
import type { MailStore } from '../store/mailbox/index.js';
import { quotaOf, type QuotaService } from '../quota/index.js';

export interface MailSessionDeps<S> {
  readonly hostname: string;
  readonly settings: S;
  /** Login and admission (login-gate.ts): lockout, password, tenant binding, the user/user+IP/domain leases. */
  readonly logins: ILoginGate;
  /** SCRAM-SHA-256, OAUTHBEARER, XOAUTH2 (lib/auth/sasl.ts). @default - PLAIN only */
  readonly sasl?: SaslMechanisms;
  readonly store: MailStore;
  /**
   * Quota verdicts and numbers (IMAP APPEND/COPY, GETQUOTA), the same service SMTP asks.
   * @default - no quota: nothing refused, GETQUOTA shows no resources
   */
  readonly quota?: QuotaService;
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
      logins: ctx.logins,
      sasl: ctx.sasl,
      store: mailStoreOf(ctx),
      quota: quotaOf(ctx),
      tls: ctx.tls,
      logger: ctx.logger.child({ protocol }),
    };
    byProtocol[protocol] = deps;
  }
  return deps as MailSessionDeps<DaemonConfig[P]>;
}
