/**
 * The local platform (`mailfleet up`): mailfleetd on loopback with the embedded default spec, data under
 * ./var (or --data-dir / MAILFLEET_DATA_DIR). `startLocalDaemon` is the one daemon start every local
 * orchestration uses: local-direct binds the public local ports itself; local-behind-proxy binds
 * port + internalOffset and expects PROXY v2 from the local HAProxy (lib/platform/haproxy.ts).
 * Lifecycle (docs/local-platform.md): one `up` per data dir (run/up.pid), a HAProxy left by a SIGKILLed
 * `up` is replaced, a taken port is one line naming its holder, and HAProxy stops after the daemon drained.
 */
import type { Logger } from '../log.js';
import { buildPlan } from '../plan/build.js';
import { table } from '../plan/format.js';
import type { DaemonMode } from '../plan/types.js';
import { loadSpec } from '../spec/load.js';
import { loadDaemonConfig, startFromSource, type LoadedDaemonConfig } from '../daemon/run.js';
import type { RunningDaemon } from '../daemon/server.js';
import { formatHaproxyEndpoints, localHaproxyDecision, replaceStaleHaproxy, startLocalHaproxy, type LocalHaproxy } from './haproxy.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startLocalS3, type LocalS3 } from '../journal/local-s3.js';
import type { S3Target } from '../journal/s3.js';
import { startLocalFilter } from './filter.js';
import { claimDataDir } from './pidfile.js';
import { isAddressInUse, portInUseError } from './port-holder.js';

export interface LocalDaemonProps {
  readonly specFile: string;
  /** @default 'local-direct' */
  readonly mode?: Extract<DaemonMode, 'local-direct' | 'local-behind-proxy'>;
  /** @default - MAILFLEET_DATA_DIR, else the spec's local.dataDir */
  readonly dataDir?: string;
  readonly logger?: Logger;
  /** The audit archive (audit.enabled): the local S3 `mailfleet up` starts. @default - MAILFLEET_AUDIT_* */
  readonly auditTarget?: S3Target;
}

export type LocalDaemon = RunningDaemon & { readonly loaded: LoadedDaemonConfig };

export async function startLocalDaemon(props: LocalDaemonProps): Promise<LocalDaemon> {
  const src = { config: props.specFile, mode: props.mode ?? 'local-direct', dataDir: props.dataDir } as const;
  try {
    return await startFromSource(src, { logger: props.logger, ...(props.auditTarget ? { auditTarget: props.auditTarget } : {}) });
  } catch (e) {
    if (!isAddressInUse(e) || e.port === undefined) throw e;
    // Name what the port is for (the daemon config holds it) and who holds it, in one line.
    const { config } = loadDaemonConfig(src);
    const socket = config.sockets.find((s) => s.port === e.port);
    throw portInUseError(e.address, e.port, socket ? `mailfleetd ${socket.protocol} listener ${socket.listener ?? ''}`.trim() : 'mailfleetd admin API', e);
  }
}

/** The local platform's audit bucket (in s3rver). */
export const LOCAL_AUDIT_BUCKET = 'audit';
/** File under the data dir holding the local S3 endpoint while `mailfleet up` runs. */
export const LOCAL_S3_ENDPOINT_FILE = 'run/s3-endpoint';

const TLS_LABEL = { none: 'plain', starttls: 'STARTTLS', implicit: 'TLS' } as const;

/** The endpoint table `mailfleet up` prints. */
export function formatEndpoints(d: LocalDaemon): string {
  const rows = d.sockets.map((s) => [s.protocol, s.listener, `${s.host}:${s.port}`, TLS_LABEL[s.tls], s.proxyProtocol ? 'PROXY v2' : '']);
  const out = [
    `mailfleetd up (${d.loaded.config.mode}), domains: ${d.loaded.config.domains.join(', ')}`,
    '',
    table(['protocol', 'listener', 'address', 'tls', 'proxy'], rows),
    '',
    `admin API   http://${d.adminHost}:${d.adminPort}  (GET /healthz, /metrics; /v1/* with Authorization: Bearer <token>)`,
    `console     http://${d.adminHost}:${d.adminPort}/console  (sign in with the admin token)`,
    `admin token ${d.adminTokenSource}`,
    `data        ${d.loaded.dataDir} (Maildirs under ${d.ctx.mailRoot})`,
    `users       ${d.loaded.config.directory.kind === 'static' ? `${d.loaded.baseDir}/${d.loaded.config.directory.file}` : d.loaded.config.directory.kind} (mailfleet users add <address> --password-stdin)`,
  ];
  if (d.skipped.length > 0) out.push(`not started (no session module yet): ${d.skipped.join(', ')}`);
  out.push('', 'Ctrl-C stops cleanly (in-flight deliveries finish).');
  return `${out.join('\n')}\n`;
}

/** `mailfleet up`: the daemon, behind a real HAProxy when local.haproxy allows and haproxy is installed. */
export interface LocalPlatform {
  readonly daemon: LocalDaemon;
  readonly haproxy?: LocalHaproxy;
  /** The audit archive's local S3 (s3rver, no Object Lock) when audit.enabled. */
  readonly s3?: LocalS3;
  /** Why HAProxy runs or not (its version, or what is missing). */
  readonly haproxyNote: string;
  /** What start-up cleaned up (a stale HAProxy or pidfile), printed above the endpoint table. */
  readonly notes: readonly string[];
  /** HAProxy stops accepting, the daemon stops gracefully (goodbyes reach clients through HAProxy), then HAProxy exits. */
  stop(deadlineMs?: number): Promise<void>;
}

/**
 * Claims the data dir (run/up.pid), replaces a HAProxy a SIGKILLed `up` left there, then starts the daemon
 * and, in front of it, HAProxy. Throws IN_USE (one line) while another `up` owns the data dir or a port is taken.
 */
export async function startLocalPlatform(props: Omit<LocalDaemonProps, 'mode'>): Promise<LocalPlatform> {
  const { spec } = loadSpec(props.specFile);
  const decision = localHaproxyDecision(spec.local.haproxy);
  const mode = decision.run ? 'local-behind-proxy' : 'local-direct';
  const { dataDir } = loadDaemonConfig({ config: props.specFile, mode, dataDir: props.dataDir });
  const claim = claimDataDir(dataDir);
  try {
    const notes: string[] = [];
    if (claim.stalePid !== undefined) notes.push(`took over run/up.pid from pid ${claim.stalePid}, which no longer runs mailfleet up`);
    const stale = await replaceStaleHaproxy(dataDir);
    if (stale !== undefined) notes.push(`stopped a stale HAProxy (pid ${stale}) left running by an earlier mailfleet up that did not stop`);
    // rspamd (+ clamd) first when the spec filters: the daemon's first message is scanned.
    const filter = await startLocalFilter(spec, dataDir);
    if (filter) notes.push(filter.note);
    filter?.ready.then(
      () => props.logger?.info('rspamd ready: mail is scanned'),
      (e: unknown) => props.logger?.error({ err: e }, 'rspamd failed to start'),
    );
    const stopFilter = () => filter?.stop() ?? Promise.resolve();
    // audit.enabled: the journal ships to s3rver on loopback (docs/audit.md: no Object Lock locally).
    let s3: LocalS3 | undefined;
    let daemon: LocalDaemon;
    try {
      s3 = spec.audit.enabled ? await startLocalS3({ dir: join(dataDir, 's3'), buckets: [LOCAL_AUDIT_BUCKET], host: spec.local.bindAddress }) : undefined;
      // Where `mailfleet archive` finds it (the port is the OS's pick).
      if (s3) writeFileSync(join(dataDir, LOCAL_S3_ENDPOINT_FILE), `${s3.endpoint}\n`);
      daemon = await startLocalDaemon({ ...props, dataDir, mode, ...(s3 ? { auditTarget: s3.target(LOCAL_AUDIT_BUCKET) } : {}) });
    } catch (e) {
      await s3?.close();
      await stopFilter();
      throw e;
    }
    const stopDaemon = (ms?: number) => daemon.stop(ms).finally(() => s3?.close());
    if (!decision.run) {
      return { daemon, s3, haproxyNote: decision.reason, notes, stop: (ms) => stopDaemon(ms).finally(() => stopFilter().finally(() => claim.release())) };
    }
    let haproxy: LocalHaproxy;
    try {
      haproxy = await startLocalHaproxy({ plan: buildPlan(spec), dataDir, specFile: props.specFile, logger: props.logger });
    } catch (e) {
      await stopDaemon(0);
      await stopFilter();
      throw e;
    }
    return {
      daemon,
      s3,
      haproxy,
      haproxyNote: decision.reason,
      notes,
      async stop(ms) {
        // HAProxy stops accepting but keeps its sessions, so the daemon's goodbyes (and replies to a DATA in
        // flight) reach clients; once the daemon closed them HAProxy ends by itself.
        haproxy.process.softStop();
        try {
          await stopDaemon(ms);
        } finally {
          await haproxy.stop();
          await stopFilter();
          claim.release();
        }
      },
    };
  } catch (e) {
    claim.release();
    throw e;
  }
}

/** The endpoint table of the whole local platform. */
export function formatPlatform(p: LocalPlatform): string {
  const notes =
    p.notes.map((n) => `note: ${n}\n`).join('') +
    (p.s3 ? `audit archive: s3rver at ${p.s3.endpoint}, bucket ${LOCAL_AUDIT_BUCKET} (no Object Lock locally; mailfleet archive search --endpoint ${p.s3.endpoint})\n` : '');
  if (!p.haproxy) return `${notes}no HAProxy: ${p.haproxyNote}\n\n${formatEndpoints(p.daemon)}`;
  return `${notes}${formatHaproxyEndpoints(p.haproxy)}\n\n${formatEndpoints(p.daemon)}`;
}
