/**
 * One mailfleetd process: builds the context (directory, Maildir delivery, admission, metrics, TLS),
 * opens a DaemonListener per configured socket whose protocol has a module, and the admin API.
 * `stop()` closes listeners first (sessions finish, in-flight deliveries complete), then the rest.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startAdminServer, resolveAdminToken } from '../admin/server.js';
import { createDirectory } from '../directory/index.js';
import type { IDirectory } from '../directory/types.js';
import { bindDaemonLimits, createAdmission, limitsOf } from '../limits/daemon.js';
import { AuthFailureWindow } from '../limits/auth-failures.js';
import type { IAdmission } from '../limits/types.js';
import { openDaemonJournal, type DaemonJournal } from '../journal/daemon.js';
import type { S3Target } from '../journal/s3.js';
import { createLogger, type Logger } from '../log.js';
import type { DaemonConfig } from '../plan/types.js';
import type { Protocol, Service } from '../spec/schema.js';
import { MaildirDelivery } from '../store/maildir/deliver.js';
import { FairGate } from '../store/fair-gate.js';
import { cleanMaildirTmp } from '../store/maildir/tmp-cleanup.js';
import type { IMessageDelivery } from '../store/types.js';
import type { DaemonContext, DeliveredListener, ProtocolModule } from './context.js';
import { LoginGate, type LoginRate } from './login-gate.js';
import { SaslMechanisms } from '../auth/sasl.js';
import { TokenVerifier } from '../auth/oauth.js';
import { TenantBinding } from './tenant-binding.js';
import { closeMailStore, mailStoreOf } from './imap/mail-store.js';
import { createDaemonMetrics, registerDurableGateMetrics } from './metrics.js';
import { DaemonListener } from './net/listener.js';
import { ConnectionRegistry } from './net/registry.js';
import { PROTOCOL_MODULES } from './protocols.js';
import { loadOrCreateCertificate, type TlsMaterial } from './tls.js';

export interface StartDaemonOptions {
  /** Data folder: Maildirs (mail/), TLS cache (tls/), admin token. */
  readonly dataDir: string;
  /**
   * Folder relative paths in the directory spec resolve against (the spec file's folder).
   * @default - the current directory
   */
  readonly baseDir?: string;
  /** @default - <dataDir>/mail */
  readonly mailRoot?: string;
  /** @default - pino at MAILFLEET_LOG_LEVEL */
  readonly logger?: Logger;
  /** Injected backends (tests, or an LDAP/Redis setup built by the caller). */
  readonly directory?: IDirectory;
  readonly admission?: IAdmission;
  readonly delivery?: IMessageDelivery;
  /** @default - self-signed, cached under <dataDir>/tls */
  readonly tls?: TlsMaterial;
  /** @default PROTOCOL_MODULES */
  readonly modules?: ReadonlyMap<Protocol, ProtocolModule>;
  /**
   * Serve the admin API.
   * @default true
   */
  readonly admin?: boolean;
  /**
   * The audit archive bucket (with audit.enabled).
   * @default - MAILFLEET_AUDIT_BUCKET / MAILFLEET_AUDIT_S3_ENDPOINT, else the journal stays in the spool
   */
  readonly auditTarget?: S3Target;
}

export interface StartedSocket {
  readonly protocol: Protocol;
  readonly service: Service;
  readonly listener: string;
  readonly host: string;
  readonly port: number;
  readonly tls: DaemonConfig['sockets'][number]['tls'];
  readonly proxyProtocol: boolean;
}

export interface RunningDaemon {
  readonly sockets: readonly StartedSocket[];
  /** Protocols configured but skipped because no module speaks them yet. */
  readonly skipped: readonly Protocol[];
  readonly adminPort?: number;
  readonly adminHost: string;
  /** Where the admin token came from (a file path, an env var name, or the spec). */
  readonly adminTokenSource: string;
  readonly adminToken: string;
  readonly ctx: DaemonContext;
  readonly listeners: readonly DaemonListener[];
  /** The audit journal's spool and uploader (audit.enabled). */
  readonly journal?: DaemonJournal;
  /** Graceful stop: stop accepting, let sessions finish until the deadline, then close everything. */
  stop(deadlineMs?: number): Promise<void>;
}

export async function startDaemon(config: DaemonConfig, opts: StartDaemonOptions): Promise<RunningDaemon> {
  const logger = opts.logger ?? createLogger({ name: 'mailfleetd' });
  const dataDir = resolve(opts.dataDir);
  const mailRoot = resolve(opts.mailRoot ?? join(dataDir, 'mail'));
  mkdirSync(mailRoot, { recursive: true });
  const tls = opts.tls ?? loadOrCreateCertificate(dataDir, config.hostname);
  const deliveryListeners = new Set<DeliveredListener>();
  const directory = opts.directory ?? createDirectory(config.directory, opts.baseDir ?? process.cwd(), logger.child({ component: 'directory' }), { domains: config.domains });
  const metrics = createDaemonMetrics();
  // The storage inner loop: durable delivery writes pass a fair, adaptive gate (docs/governor.md).
  const durableGate = new FairGate(config.maildir.durableWrites ?? {});
  registerDurableGateMetrics(metrics.registry, () => durableGate.stats());
  // Live limits (overrides in <dataDir>/limits-state.json), fleet-wide in Redis when configured (lib/limits).
  const admission = opts.admission ?? createAdmission(config, { dataDir, logger });
  const logins = new LoginGate({
    directory,
    admission,
    // Fleet-wide in Redis when the spec names it (the admission's connection), else per node.
    failures: limitsOf(admission)?.authFailures ?? new AuthFailureWindow(config.auth),
    tenants: TenantBinding.fromConfig(config),
    concurrentChecksPerIp: config.auth.concurrentChecksPerIp,
    concurrentChecksPerUser: config.auth.concurrentChecksPerUser,
    requireAppPasswords: config.auth.requireAppPasswords,
    failuresTotal: metrics.authFailures,
    lockoutsTotal: metrics.authLockouts,
    loginRate: loginRateOf(admission),
  });
  // Audit journal (lib/journal): opened before any listener, so no message is accepted without it.
  const journal = config.audit?.enabled ? await openDaemonJournal(config.audit, { dataDir, logger, registry: metrics.registry, target: opts.auditTarget }) : undefined;
  const ctx: DaemonContext = {
    config,
    directory,
    logins,
    sasl: new SaslMechanisms({
      gate: logins,
      directory,
      ...(config.auth.oidc ? { tokens: new TokenVerifier(config.auth.oidc) } : {}),
      scramSha256: config.auth.scramSha256,
      requireAppPasswords: config.auth.requireAppPasswords,
    }),
    delivery:
      opts.delivery ??
      new MaildirDelivery({
        root: mailRoot,
        onDelivered: (address, folder, name) => {
          for (const l of deliveryListeners) l(address, folder, name);
        },
        gate: durableGate,
      }),
    admission,
    logger,
    metrics,
    tls: { key: tls.key, cert: tls.cert },
    dataDir,
    mailRoot,
    connections: new ConnectionRegistry(),
    deliveryListeners,
    ...(journal ? { journal: journal.spool } : {}),
  };

  const modules = opts.modules ?? PROTOCOL_MODULES;
  const listeners: DaemonListener[] = [];
  const sockets: StartedSocket[] = [];
  const skipped: Protocol[] = [];
  const usedModules = new Set<ProtocolModule>();
  try {
    for (const s of config.sockets) {
      const mod = modules.get(s.protocol);
      if (!mod) {
        if (!skipped.includes(s.protocol)) skipped.push(s.protocol);
        continue;
      }
      usedModules.add(mod);
      const l = new DaemonListener({
        socket: s,
        busy: mod.busy,
        handle: (conn) => mod.handle(conn, ctx),
        admission: ctx.admission,
        registry: ctx.connections,
        logger: logger.child({ protocol: s.protocol }),
        metrics: ctx.metrics,
        tls,
      });
      const port = await l.listen();
      listeners.push(l);
      sockets.push({ protocol: s.protocol, service: s.service, listener: l.name, host: s.host, port, tls: s.tls, proxyProtocol: s.proxyProtocol });
    }
    if (skipped.length > 0) logger.warn({ protocols: skipped }, 'no session module for these protocols yet; their sockets are not opened');
    // The mail store (IMAP/POP3 index, mailbox events) opens with the daemon, not at its first session: a node
    // must publish its deliveries to other nodes' IDLE sessions (Redis) before anyone connects to it.
    mailStoreOf(ctx);
    // Crash leftovers in Maildir tmp/ (lib/store/maildir/tmp-cleanup.ts), in the background: a big root must not delay the start.
    void cleanMaildirTmp(mailRoot, { maxAgeHours: config.maildir.tmpMaxAgeHours }).then(
      (r) => logger.info(r, 'Maildir tmp/ cleaned'),
      (e: unknown) => logger.warn({ err: e }, 'Maildir tmp/ cleanup failed'),
    );
    for (const m of usedModules) m.start?.(ctx);
  } catch (e) {
    await closeMailStore(ctx);
    await Promise.all(listeners.map((l) => l.close(0)));
    await directory.close();
    throw e;
  }

  // Per-port caps follow live `<service>.portConnections` changes; limit metrics join the registry (lib/limits).
  const limitsBinding = bindDaemonLimits({
    admission: ctx.admission,
    registry: ctx.metrics.registry,
    listeners: listeners.map((l) => ({ socket: config.sockets.find((s) => (s.listener ?? `${s.protocol}:${s.port}`) === l.name)!, listener: l })),
  });
  const { token, source } = resolveAdminToken(config, dataDir);
  const admin = opts.admin === false ? undefined : await startAdminServer({ ctx, token }).catch(async (e: unknown) => {
    await Promise.all(listeners.map((l) => l.close(0)));
    await closeMailStore(ctx);
    await directory.close();
    throw e;
  });
  logger.info({ sockets: sockets.map((s) => `${s.protocol}:${s.host}:${s.port}`), admin: admin?.port, mailRoot }, 'mailfleetd started');

  let stopping: Promise<void> | undefined;
  return {
    sockets,
    skipped,
    adminPort: admin?.port,
    adminHost: config.admin.host,
    adminToken: token,
    adminTokenSource: source,
    ctx,
    listeners,
    ...(journal ? { journal } : {}),
    stop(deadlineMs = 10_000) {
      stopping ??= (async () => {
        logger.info({ connections: ctx.connections.size }, 'mailfleetd stopping');
        await Promise.all(listeners.map((l) => l.close(deadlineMs)));
        for (const m of usedModules) await m.stop?.(ctx);
        await closeMailStore(ctx);
        await journal?.close();
        await admin?.close();
        await limitsBinding.close();
        await directory.close();
        logger.info('mailfleetd stopped');
      })();
      return stopping;
    },
  };
}

/** rates.loginsPerMinutePerUser with its domain and per-user overrides, through the daemon's rate buckets (fleet-wide with Redis). */
function loginRateOf(admission: IAdmission): LoginRate | undefined {
  const l = limitsOf(admission);
  if (!l) return undefined;
  return {
    limit: (user) => l.table.userRateOf('loginsPerMinutePerUser', user),
    take: (user) => l.rates.take([{ rate: 'loginsPerMinutePerUser', id: user }]),
  };
}
