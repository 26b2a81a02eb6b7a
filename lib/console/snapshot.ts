/**
 * What the operator console shows: `mailfleet top` for the whole fleet (lib/ops/top.ts does the
 * aggregation) plus the local HAProxy frontends, with every node's status ("answered" or "did not
 * answer: why"). One call per refresh; the page keeps the history for its sparklines.
 */
import { MailfleetError } from '../errors.js';
import type { DaemonContext } from '../daemon/context.js';
import { findLocalHaproxy } from '../ops/haproxy-applier.js';
import {
  collectHaproxyView,
  describeDown,
  downBackends,
  formatSessionsWithoutClient,
  RateTracker,
  sessionsWithoutClient,
} from '../ops/haproxy-view.js';
import type { Fleet } from '../ops/fleet.js';
import { collectTop, TOP_SECTIONS, type TopSection } from '../ops/top.js';
import { loadSpec } from '../spec/load.js';
import type { Spec } from '../spec/schema.js';

/** How often the page polls GET /v1/console/snapshot (ms); documented in docs/console.md. */
export const CONSOLE_REFRESH_MS = 2000;
/** Per-node answer budget for one snapshot: under the refresh interval, so a dead node never stacks polls. */
export const CONSOLE_NODE_TIMEOUT_MS = 1500;

export interface ConsoleRow {
  /** Listener / frontend name, domain, user address or client IP. */
  readonly id: string;
  readonly service: string;
  /** 'daemon': counted by mailfleetd; 'haproxy': a frontend of the local HAProxy tier. */
  readonly source: 'daemon' | 'haproxy';
  readonly current: number;
  readonly limit?: number;
  /** current / limit. */
  readonly use?: number;
  readonly refused: number;
  /** Refusals by reason (docs/console.md): the limit field, or the listener's refusal reason. */
  readonly refusals: Readonly<Record<string, number>>;
  /** Connections per second since the previous snapshot (listeners and frontends). */
  readonly rate?: number;
  /** HAProxy rows: the state of the frontend's backend (UP, DOWN, MAINT, …). */
  readonly state?: string;
  readonly nodes: number;
}

/** A backend of the local HAProxy and its servers, as the runtime API reports them. */
export interface ConsoleBackend {
  readonly name: string;
  readonly status: string;
  readonly servers: ReadonlyArray<{ name: string; status: string; check: string; lastChangeSeconds?: number }>;
}

export interface ConsoleNode {
  readonly node: string;
  readonly kind: 'daemon' | 'haproxy';
  readonly ok: boolean;
  /** "answered" details (hostname, connections) or why it did not answer. */
  readonly detail: string;
}

export interface ConsoleSnapshot {
  readonly at: string;
  readonly refreshMs: number;
  readonly total: number;
  readonly nodes: readonly ConsoleNode[];
  readonly sections: Readonly<Record<TopSection, readonly ConsoleRow[]>>;
  /** The local HAProxy's backends (empty without one). */
  readonly backends: readonly ConsoleBackend[];
}

/** Rates are deltas between snapshots; the console process keeps the previous sample of every row. */
const rates = new RateTracker();

/**
 * The fleet the console of this daemon speaks for: the spec's ops.daemons (in the daemon config, or in the
 * spec the local HAProxy records), else this daemon alone. The operator's own token is passed on.
 */
export function consoleFleet(ctx: DaemonContext, selfUrl: string, token: string): Fleet {
  const info = findLocalHaproxy(ctx.dataDir);
  let spec: Spec | undefined;
  if (info?.specFile && !ctx.config.opsDaemons) {
    try {
      spec = loadSpec(info.specFile).spec;
    } catch {
      spec = undefined; // the spec moved or broke since HAProxy started: this daemon alone is still useful
    }
  }
  const urls = ctx.config.opsDaemons ?? spec?.ops?.daemons ?? [selfUrl];
  return {
    nodes: urls.map((url) => ({ url, token })),
    spec,
    dataDir: ctx.dataDir,
    timeoutMs: CONSOLE_NODE_TIMEOUT_MS,
  };
}

/** This daemon's own admin URL, as the fan-out reaches it (wildcard binds are asked on loopback). */
export function selfAdminUrl(ctx: DaemonContext, hostHeader: string | undefined): string {
  const { host } = ctx.config.admin;
  let port = ctx.config.admin.port;
  if (port === 0) {
    const m = /:(\d+)$/.exec(hostHeader ?? '');
    if (!m) throw new MailfleetError('BAD_REQUEST', 'no Host header to find the admin port', { status: 400 });
    port = Number(m[1]);
  }
  const h = host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host;
  return `http://${h.includes(':') ? `[${h}]` : h}:${port}`;
}

export async function collectSnapshot(fleet: Fleet): Promise<ConsoleSnapshot> {
  const haproxyInfo = fleet.dataDir ? findLocalHaproxy(fleet.dataDir) : undefined;
  const [top, haproxy] = await Promise.all([
    collectTop(fleet, { rates }),
    haproxyInfo
      ? collectHaproxyView(haproxyInfo).then(
          (view) => ({ ok: true as const, view }),
          (e: unknown) => ({ ok: false as const, error: (e as Error).message }),
        )
      : undefined,
  ]);
  const sections = Object.fromEntries(
    TOP_SECTIONS.map((s) => [
      s,
      top.sections[s].map(
        (r): ConsoleRow => ({
          id: r.id,
          service: r.service,
          source: 'daemon',
          current: r.current,
          limit: r.limit,
          use: r.use,
          refused: r.refused,
          refusals: r.refusals,
          rate: r.rate,
          nodes: r.nodes,
        }),
      ),
    ]),
  ) as Record<TopSection, ConsoleRow[]>;
  const nodes: ConsoleNode[] = top.nodes.map((n) => ({
    node: n.node,
    kind: 'daemon',
    ok: n.ok,
    detail: n.ok
      ? `answered: ${n.hostname}, ${n.connections} connection(s), counters ${n.backend}`
      : `did not answer: ${n.error}`,
  }));
  let backends: ConsoleBackend[] = [];
  if (haproxyInfo && haproxy) {
    // A DOWN backend makes the HAProxy node not ok: its frontends stay OPEN, but clients get nothing there.
    const down = haproxy.ok ? downBackends(haproxy.view) : [];
    // Sessions the daemons count with no HAProxy connection behind them (leaked counts) are said, not hidden.
    const ghosts = haproxy.ok ? formatSessionsWithoutClient(sessionsWithoutClient(top.sections.listener, haproxy.view)) : [];
    nodes.push({
      node: `haproxy (${haproxyInfo.adminSocket})`,
      kind: 'haproxy',
      ok: haproxy.ok && down.length === 0, // ghosts are a warning: the two counts are read a moment apart
      detail: haproxy.ok
        ? `answered: ${haproxy.view.frontends.length} frontend(s), ${haproxy.view.backends.length - down.length} of ${haproxy.view.backends.length} backend(s) UP` +
          (down.length > 0 ? ` — ${down.map(describeDown).join('; ')}` : '') +
          (ghosts.length > 0 ? ` — ${ghosts.join('; ')}` : '')
        : `did not answer: ${haproxy.error}`,
    });
    if (haproxy.ok) {
      backends = haproxy.view.backends.map((b) => ({
        name: b.name,
        status: b.status,
        servers: b.servers.map((x) => ({
          name: x.name,
          status: x.status,
          check: x.checkStatus ? `${x.checkStatus}${x.checkDesc ? ` ${x.checkDesc}` : ''}` : '',
          lastChangeSeconds: x.lastChangeSeconds,
        })),
      }));
      const rows = haproxy.view.frontends.map((f): ConsoleRow => {
        const limit = f.cap ?? f.slim;
        return {
          id: f.name,
          service: 'haproxy',
          source: 'haproxy',
          current: f.scur,
          limit: limit > 0 ? limit : undefined,
          use: limit > 0 ? f.scur / limit : undefined,
          refused: f.denied,
          refusals: f.denied > 0 ? { 'haproxy denied': f.denied } : {},
          rate: rates.sample(`haproxy|${haproxyInfo.adminSocket}|${f.name}`, f.stot) ?? f.rate,
          state: f.backendStatus,
          nodes: 1,
        };
      });
      sections.listener = [...sections.listener, ...rows].sort(heaviestFirst);
    }
  }
  return { at: top.at, refreshMs: CONSOLE_REFRESH_MS, total: top.total, nodes, sections, backends };
}

function heaviestFirst(a: ConsoleRow, b: ConsoleRow): number {
  return b.current - a.current || (b.use ?? 0) - (a.use ?? 0) || b.refused - a.refused || a.id.localeCompare(b.id);
}
