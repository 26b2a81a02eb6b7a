/**
 * The local platform (`mailfleet up`): mailfleetd on loopback with the embedded default spec, data under
 * ./var (or --data-dir / MAILFLEET_DATA_DIR). `startLocalDaemon` is the one daemon start every local
 * orchestration uses: local-direct binds the public local ports itself; local-behind-proxy binds
 * port + internalOffset and expects PROXY v2 from the local HAProxy (lib/platform/haproxy.ts).
 */
import type { Logger } from '../log.js';
import { buildPlan } from '../plan/build.js';
import { table } from '../plan/format.js';
import type { DaemonMode } from '../plan/types.js';
import { loadSpec } from '../spec/load.js';
import { startFromSource, type LoadedDaemonConfig } from '../daemon/run.js';
import type { RunningDaemon } from '../daemon/server.js';
import { formatHaproxyEndpoints, localHaproxyDecision, startLocalHaproxy, type LocalHaproxy } from './haproxy.js';

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
  return startFromSource({ config: props.specFile, mode: props.mode ?? 'local-direct', dataDir: props.dataDir }, { logger: props.logger });
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
  /** HAProxy stops accepting, the daemon stops gracefully (goodbyes reach clients through HAProxy), then HAProxy exits. */
  stop(deadlineMs?: number): Promise<void>;
}

export async function startLocalPlatform(props: Omit<LocalDaemonProps, 'mode'>): Promise<LocalPlatform> {
  const { spec } = loadSpec(props.specFile);
  const decision = localHaproxyDecision(spec.local.haproxy);
  if (!decision.run) {
    const daemon = await startLocalDaemon({ ...props, mode: 'local-direct' });
    return { daemon, haproxyNote: decision.reason, stop: (ms) => daemon.stop(ms) };
  }
  const daemon = await startLocalDaemon({ ...props, mode: 'local-behind-proxy' });
  let haproxy: LocalHaproxy;
  try {
    haproxy = await startLocalHaproxy({ plan: buildPlan(spec), dataDir: daemon.loaded.dataDir, specFile: props.specFile, logger: props.logger });
  } catch (e) {
    await daemon.stop(0);
    throw e;
  }
  return {
    daemon,
    haproxy,
    haproxyNote: decision.reason,
    async stop(ms) {
      haproxy.process.softStop();
      await daemon.stop(ms);
      await haproxy.stop();
    },
  };
}

/** The endpoint table of the whole local platform. */
export function formatPlatform(p: LocalPlatform): string {
  if (!p.haproxy) return `no HAProxy: ${p.haproxyNote}\n\n${formatEndpoints(p.daemon)}`;
  return `${formatHaproxyEndpoints(p.haproxy)}\n\n${formatEndpoints(p.daemon)}`;
}
