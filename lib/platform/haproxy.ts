/**
 * The HAProxy half of the local platform: renders haproxy.cfg + the busy-reply Lua file for the local
 * target into <dataDir>/run/haproxy, lays recorded live caps over the plan, starts a real HAProxy in
 * master-worker mode, and leaves a small runtime descriptor so `mailfleet top` / `limit set` (other
 * processes) can find its sockets and re-render the same way. HAProxy's pidfile (haproxy.pid) lets the
 * next `up` stop a HAProxy whose `up` was SIGKILLed before it binds the same ports again.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { MailfleetError } from '../errors.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { table } from '../plan/format.js';
import type { Plan } from '../plan/types.js';
import { haproxyLayout, renderBusyLua, renderHaproxyConfig, type HaproxyLayout } from '../render/haproxy.js';
import { HaproxyProcess, haproxyVersion, maxConnectionsForFileLimit, openFileLimit, stopOrphanHaproxy } from '../haproxy/process.js';
import { loadOrCreateCertificate } from '../daemon/tls.js';
import { applyListenerLimits, listenerLimitsPath, readListenerLimits } from '../haproxy/state.js';
import { EDGE_LISTS_FILE, readEdgeLists, writeEdgeListFiles } from '../haproxy/edge.js';
import { readPidfile } from './pidfile.js';
import { probePort } from './port-holder.js';

export const RUNTIME_INFO_FILE = 'haproxy-runtime.json';
export const HAPROXY_PIDFILE = 'haproxy.pid';
/** sun_path is 108 bytes on Linux, including the terminating NUL. */
const MAX_SOCKET_PATH = 107;

export function localHaproxyRunDir(dataDir: string): string {
  return join(resolve(dataDir), 'run', 'haproxy');
}

/** What another process needs to drive the running HAProxy. */
export interface LocalHaproxyInfo {
  readonly version: 1;
  readonly pid: number;
  readonly runDir: string;
  readonly configFile: string;
  readonly luaFile: string;
  readonly adminSocket: string;
  readonly masterSocket: string;
  readonly logFile: string;
  readonly dataDir: string;
  readonly limitsFile: string;
  readonly specFile?: string;
  readonly maxConnectionsCeiling?: number;
}

/**
 * Stops a HAProxy that a dead `up` left running on this data dir (found by its pidfile, or by the runtime
 * descriptor older versions left) and clears both files. Returns its PID when there was one.
 */
export async function replaceStaleHaproxy(dataDir: string): Promise<number | undefined> {
  const runDir = localHaproxyRunDir(dataDir);
  const pidFile = join(runDir, HAPROXY_PIDFILE);
  const infoFile = join(runDir, RUNTIME_INFO_FILE);
  let infoPid: number | undefined;
  try {
    infoPid = readLocalHaproxyInfo(dataDir)?.pid;
  } catch {
    // a torn descriptor: the pidfile still says who runs
  }
  let stopped: number | undefined;
  for (const pid of new Set([readPidfile(pidFile), infoPid])) {
    if (pid !== undefined) stopped = (await stopOrphanHaproxy(pid, join(runDir, 'haproxy.cfg'))) ?? stopped;
  }
  rmSync(pidFile, { force: true });
  rmSync(infoFile, { force: true });
  return stopped;
}

export function readLocalHaproxyInfo(dataDir: string): LocalHaproxyInfo | undefined {
  const file = join(localHaproxyRunDir(dataDir), RUNTIME_INFO_FILE);
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as LocalHaproxyInfo;
}

/**
 * Whether `mailfleet up` runs HAProxy: spec.local.haproxy 'off' never, 'on' always (fails without the
 * binary), 'auto' when `haproxy -v` works. The reason is printed next to the endpoint table.
 */
export function localHaproxyDecision(mode: 'auto' | 'on' | 'off', bin = 'haproxy'): { run: boolean; reason: string } {
  if (mode === 'off') return { run: false, reason: 'local.haproxy is off: the daemon listens on the public ports itself' };
  const version = haproxyVersion(bin);
  if (version) return { run: true, reason: version };
  if (mode === 'on') throw new MailfleetError('INTERNAL', 'local.haproxy is "on" but haproxy is not installed: apt-get install haproxy');
  return { run: false, reason: 'haproxy is not installed (apt-get install haproxy): the daemon listens on the public ports directly' };
}

export interface RenderedLocalHaproxy {
  /** The plan with recorded live caps laid over it. */
  readonly plan: Plan;
  readonly layout: HaproxyLayout;
  readonly configFile: string;
  readonly luaFile: string;
}

/** Renders and writes haproxy.cfg and the Lua file for the local target. Throws PLAN_INVALID like the renderer. */
export function writeLocalHaproxyFiles(
  basePlan: Plan,
  opts: { runDir: string; limitsFile: string; maxConnectionsCeiling?: number; tls?: { key: string; cert: string } },
): RenderedLocalHaproxy {
  const plan = applyListenerLimits(basePlan, readListenerLimits(opts.limitsFile));
  const renderOpts = { target: 'local' as const, runDir: opts.runDir, maxConnectionsCeiling: opts.maxConnectionsCeiling };
  const layout = haproxyLayout(plan, renderOpts);
  if (layout.adminSocket.length > MAX_SOCKET_PATH || layout.masterSocket.length > MAX_SOCKET_PATH)
    throw new MailfleetError('BAD_REQUEST', `data dir path too long for a unix socket (${layout.masterSocket}): use a shorter --data-dir`, {
      status: 400,
    });
  mkdirSync(opts.runDir, { recursive: true });
  const configFile = join(opts.runDir, 'haproxy.cfg');
  const luaFile = layout.luaPath;
  writeFileSync(luaFile, renderBusyLua(plan));
  // Implicit-TLS listeners answer over-cap clients inside TLS, with the daemon's own certificate.
  if (plan.listeners.some((l) => l.tls === 'implicit')) {
    // A re-render for a reload (limit set) keeps the PEM the running tier was started with.
    if (opts.tls) writeFileSync(layout.tlsPemPath, `${opts.tls.cert.trimEnd()}\n${opts.tls.key.trimEnd()}\n`, { mode: 0o600 });
    else if (!existsSync(layout.tlsPemPath))
      throw new MailfleetError('INTERNAL', `implicit-TLS listeners need ${layout.tlsPemPath} for their busy replies: restart mailfleet up`);
  }
  // The edge lists: HAProxy refuses to start without them, so they are written even when empty.
  writeEdgeListFiles(plan, layout, readEdgeLists(join(dirname(opts.limitsFile), EDGE_LISTS_FILE)));
  writeFileSync(configFile, renderHaproxyConfig(plan, renderOpts));
  return { plan, layout, configFile, luaFile };
}

export interface LocalHaproxyProps {
  /** The plan as built from the spec; recorded live caps are laid over it here. */
  readonly plan: Plan;
  readonly dataDir: string;
  /** Recorded so the ops CLI can rebuild the plan for a reload. */
  readonly specFile?: string;
  readonly logger?: Logger;
  /** @default 'haproxy' */
  readonly bin?: string;
}

export interface LocalHaproxy {
  readonly process: HaproxyProcess;
  readonly info: LocalHaproxyInfo;
  readonly layout: HaproxyLayout;
  /** The effective plan (recorded caps applied). */
  readonly plan: Plan;
  stop(): Promise<void>;
}

export async function startLocalHaproxy(props: LocalHaproxyProps): Promise<LocalHaproxy> {
  const dataDir = resolve(props.dataDir);
  const runDir = localHaproxyRunDir(dataDir);
  const limitsFile = listenerLimitsPath(dataDir);
  const maxConnectionsCeiling = maxConnectionsForFileLimit(openFileLimit(), props.plan.listeners.length);
  const tls = loadOrCreateCertificate(dataDir, props.plan.hostname);
  const rendered = writeLocalHaproxyFiles(props.plan, { runDir, limitsFile, maxConnectionsCeiling, tls });
  const log = props.logger ?? silentLogger;
  if (rendered.layout.globalClampedBy)
    log.info({ maxconn: rendered.layout.globalMaxconn, by: rendered.layout.globalClampedBy }, 'haproxy global maxconn lowered');
  // HAProxy binds with SO_REUSEPORT, so it would share a port another process holds: probe first.
  const host = rendered.layout.frontends[0]?.bindHost ?? '127.0.0.1';
  await probePort(host, rendered.layout.monitorPort, 'HAProxy stats');
  for (const f of rendered.layout.frontends) await probePort(f.bindHost, f.bindPort, `${f.listener.protocol} listener ${f.listener.name}`);
  const proc = new HaproxyProcess({
    configFile: rendered.configFile,
    adminSocket: rendered.layout.adminSocket,
    masterSocket: rendered.layout.masterSocket,
    logFile: join(runDir, 'haproxy.log'),
    pidFile: join(runDir, HAPROXY_PIDFILE),
    bin: props.bin,
    logger: log,
  });
  await proc.start();
  const info: LocalHaproxyInfo = {
    version: 1,
    pid: proc.pid!,
    runDir,
    configFile: rendered.configFile,
    luaFile: rendered.luaFile,
    adminSocket: rendered.layout.adminSocket,
    masterSocket: rendered.layout.masterSocket,
    logFile: join(runDir, 'haproxy.log'),
    dataDir,
    limitsFile,
    specFile: props.specFile === undefined ? undefined : resolve(props.specFile),
    maxConnectionsCeiling,
  };
  const infoFile = join(runDir, RUNTIME_INFO_FILE);
  writeFileSync(infoFile, JSON.stringify(info, null, 2) + '\n');
  return {
    process: proc,
    info,
    layout: rendered.layout,
    plan: rendered.plan,
    stop: async () => {
      await proc.stop();
      rmSync(infoFile, { force: true });
    },
  };
}

const TLS_LABEL = { none: 'plain', starttls: 'STARTTLS', implicit: 'TLS' } as const;

/** The client-facing part of the endpoint table when HAProxy fronts the daemon. */
export function formatHaproxyEndpoints(h: Pick<LocalHaproxy, 'layout' | 'process' | 'info'>): string {
  const rows = h.layout.frontends.map((f) => [
    f.listener.protocol,
    f.listener.name,
    `${f.bindHost}:${f.bindPort}`,
    TLS_LABEL[f.listener.tls],
    f.cap,
    f.listener.limits.sourceConnections,
    `127.0.0.1:${f.listener.localDaemonPort}`,
  ]);
  return [
    `haproxy (pid ${h.process.pid ?? '?'}) in front: one frontend per listener, PROXY v2 to mailfleetd`,
    '',
    table(['protocol', 'listener', 'address', 'tls', 'cap', 'per-ip', 'daemon'], rows),
    '',
    `haproxy     stats http://${h.layout.frontends[0]?.bindHost ?? '127.0.0.1'}:${h.layout.monitorPort}/  runtime API ${h.info.adminSocket}`,
    `            config ${h.info.configFile}  log ${h.info.logFile}`,
  ].join('\n');
}
