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
}

export type LocalDaemon = RunningDaemon & { readonly loaded: LoadedDaemonConfig };

export async function startLocalDaemon(props: LocalDaemonProps): Promise<LocalDaemon> {
  const src = { config: props.specFile, mode: props.mode ?? 'local-direct', dataDir: props.dataDir } as const;
  try {
    return await startFromSource(src, { logger: props.logger });
  } catch (e) {
    if (!isAddressInUse(e) || e.port === undefined) throw e;
    // Name what the port is for (the daemon config holds it) and who holds it, in one line.
    const { config } = loadDaemonConfig(src);
    const socket = config.sockets.find((s) => s.port === e.port);
    throw portInUseError(e.address, e.port, socket ? `mailfleetd ${socket.protocol} listener ${socket.listener ?? ''}`.trim() : 'mailfleetd admin API', e);
  }
}

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
    let daemon: LocalDaemon;
    try {
      daemon = await startLocalDaemon({ ...props, dataDir, mode });
    } catch (e) {
      await filter?.stop();
      throw e;
    }
    const stopFilter = () => filter?.stop() ?? Promise.resolve();
    if (!decision.run) {
      return { daemon, haproxyNote: decision.reason, notes, stop: (ms) => daemon.stop(ms).finally(() => stopFilter().finally(() => claim.release())) };
    }
    let haproxy: LocalHaproxy;
    try {
      haproxy = await startLocalHaproxy({ plan: buildPlan(spec), dataDir, specFile: props.specFile, logger: props.logger });
    } catch (e) {
      await daemon.stop(0);
      await stopFilter();
      throw e;
    }
    return {
      daemon,
      haproxy,
      haproxyNote: decision.reason,
      notes,
      async stop(ms) {
        // HAProxy stops accepting but keeps its sessions, so the daemon's goodbyes (and replies to a DATA in
        // flight) reach clients; once the daemon closed them HAProxy ends by itself.
        haproxy.process.softStop();
        try {
          await daemon.stop(ms);
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
  const notes = p.notes.map((n) => `note: ${n}\n`).join('');
  if (!p.haproxy) return `${notes}no HAProxy: ${p.haproxyNote}\n\n${formatEndpoints(p.daemon)}`;
  return `${notes}${formatHaproxyEndpoints(p.haproxy)}\n\n${formatEndpoints(p.daemon)}`;
}
