/**
 * What the local HAProxy tier looks like to `mailfleet top`, `mailfleet limit list` and the console, from
 * its runtime API: every frontend (scur, cap, maxconn, rate, refusals) with the state of the backend it
 * sends to, and every backend with its servers' check states. A frontend stays OPEN while its backend is
 * DOWN, so the frontend status alone reads as healthy: the backend state is what says clients get nothing.
 */
import { readFileSync } from 'node:fs';
import { HaproxyRuntime, frontendBackendsOf, type BackendStat, type FrontendStat } from '../haproxy/runtime.js';
import type { LocalHaproxyInfo } from '../platform/haproxy.js';
import { table } from '../plan/format.js';

/** One `mailfleet top` row per HAProxy frontend. */
export interface HaproxyTopRow extends FrontendStat {
  /** The live cap (process variable). */
  readonly cap?: number;
  /** The backend this frontend sends to (its `default_backend`). */
  readonly backend?: string;
  /** That backend's state: UP, DOWN, … */
  readonly backendStatus?: string;
}

export interface HaproxyView {
  /** Where the numbers come from. */
  readonly source: string;
  readonly frontends: readonly HaproxyTopRow[];
  readonly backends: readonly BackendStat[];
}

/** Reads the running HAProxy of a data dir: one `show stat`, one batch of `get var`, and its config file. */
export async function collectHaproxyView(info: Pick<LocalHaproxyInfo, 'adminSocket'> & Partial<Pick<LocalHaproxyInfo, 'configFile'>>): Promise<HaproxyView> {
  const runtime = new HaproxyRuntime(info.adminSocket);
  const stat = await runtime.showStat();
  const [frontends, backends] = await Promise.all([runtime.frontends(stat), runtime.backends(stat)]);
  const caps = await runtime.listenerCaps(frontends.map((r) => r.name));
  let map = new Map<string, string>();
  if (info.configFile) {
    try {
      map = frontendBackendsOf(readFileSync(info.configFile, 'utf8'));
    } catch {
      // The config moved since HAProxy started: frontends then show no backend rather than failing.
    }
  }
  const state = new Map(backends.map((b) => [b.name, b.status]));
  return {
    source: `HAProxy runtime API ${info.adminSocket}`,
    frontends: frontends
      .map((r) => {
        const backend = map.get(r.name);
        return { ...r, cap: caps.get(r.name), backend, backendStatus: backend ? state.get(backend) : undefined };
      })
      .sort((a, b) => b.scur - a.scur || a.name.localeCompare(b.name)),
    backends,
  };
}

/** Backends that cannot serve: no server UP. */
export function downBackends(v: Pick<HaproxyView, 'backends'>): BackendStat[] {
  return v.backends.filter((b) => !b.status.startsWith('UP'));
}

/** One line per backend that is not UP, naming its servers' states and last check. */
export function describeDown(b: BackendStat): string {
  const servers = b.servers.map((s) => `${s.name} ${s.status}${s.checkStatus ? ` (${s.checkStatus}${s.checkDesc ? `: ${s.checkDesc}` : ''})` : ''}`);
  return `backend ${b.name} ${b.status}: ${servers.join(', ')}`;
}

/** `mailfleet top`'s HAProxy section: frontends, heaviest first, each with its backend's state. */
export function formatHaproxyTop(rows: readonly HaproxyTopRow[], rates?: ReadonlyMap<string, number>): string {
  return table(
    ['frontend', 'scur', 'cap', 'slim', 'smax', 'total', 'conn/s', 'denied', 'status', 'backend', 'backend state'],
    rows.map((r) => [
      r.name,
      r.scur,
      r.cap ?? '-',
      r.slim,
      r.smax,
      r.stot,
      fmtRate(rates?.get(r.name) ?? r.rate),
      r.denied,
      r.status,
      r.backend ?? '-',
      r.backendStatus ?? '-',
    ]),
  );
}

/** The backends and their servers: UP / DOWN / MAINT with the last check. */
export function formatHaproxyBackends(backends: readonly BackendStat[]): string {
  return table(
    ['backend', 'state', 'server', 'server state', 'check', 'since', 'scur'],
    backends.flatMap((b) =>
      b.servers.map((s) => [
        b.name,
        b.status,
        s.name,
        s.status,
        s.checkStatus ? `${s.checkStatus}${s.checkDesc ? ` ${s.checkDesc}` : ''}` : '-',
        s.lastChangeSeconds === undefined ? '-' : `${s.lastChangeSeconds}s`,
        s.scur,
      ]),
    ),
  );
}

export function formatHaproxyView(v: HaproxyView, rates?: ReadonlyMap<string, number>): string {
  const down = downBackends(v);
  const head = down.length > 0 ? `HAProxy: ${down.length} backend(s) DOWN — ${down.map(describeDown).join('; ')}` : `HAProxy: every backend UP`;
  return [head, '', `HAProxy frontends (local tier, ${v.source})`, formatHaproxyTop(v.frontends, rates), '', 'HAProxy backends', formatHaproxyBackends(v.backends)].join('\n');
}

/** Connections per second, one decimal under 10. */
export function fmtRate(r: number | undefined): string {
  if (r === undefined || !Number.isFinite(r)) return '-';
  return r < 10 ? (Math.round(r * 10) / 10).toString() : String(Math.round(r));
}

/**
 * Per-row rate from two samples of a monotonic total (HAProxy `stot`, the daemon's accepted connections):
 * (total now - total before) / seconds between. Keeps the last sample of each key.
 */
export class RateTracker {
  private readonly last = new Map<string, { total: number; atMs: number }>();

  /** The rate since the previous sample of this key, or undefined on the first one (or after a restart). */
  sample(key: string, total: number, atMs = Date.now()): number | undefined {
    const prev = this.last.get(key);
    this.last.set(key, { total, atMs });
    if (!prev || total < prev.total || atMs <= prev.atMs) return undefined;
    return (total - prev.total) / ((atMs - prev.atMs) / 1000);
  }
}

/**
 * Listeners where the daemons count more sessions than HAProxy holds connections to that frontend. Every
 * client of a listener behind the local HAProxy comes through its frontend, so the surplus are sessions with
 * no client behind them (leaked counts). Only meaningful on the local tier (one HAProxy for the fleet).
 */
export function sessionsWithoutClient(
  listeners: ReadonlyArray<{ id: string; current: number }>,
  view: { readonly frontends: ReadonlyArray<Pick<HaproxyTopRow, 'name' | 'scur'>> },
): Array<{ listener: string; daemon: number; haproxy: number }> {
  const scur = new Map(view.frontends.map((f) => [f.name, f.scur]));
  const out: Array<{ listener: string; daemon: number; haproxy: number }> = [];
  for (const l of listeners) {
    const h = scur.get(l.id);
    if (h !== undefined && l.current > h) out.push({ listener: l.id, daemon: l.current, haproxy: h });
  }
  return out;
}

export function formatSessionsWithoutClient(rows: ReturnType<typeof sessionsWithoutClient>): string[] {
  return rows.map(
    (r) =>
      `WARNING listener ${r.listener}: the daemons count ${r.daemon} session(s), HAProxy holds ${r.haproxy} connection(s): ${r.daemon - r.haproxy} without a client`,
  );
}
