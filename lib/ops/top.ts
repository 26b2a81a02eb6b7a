/**
 * `mailfleet top`: the runbook's first step ("list current connections of every virtual server, find
 * the heaviest") across the fleet. Connections come from every node's GET /v1/connections (each node
 * lists its own sessions, so sums are fleet-wide); limits and refusals from GET /v1/limits. Sections:
 * listeners (tenant × protocol), then domains, users and client IPs, heaviest first, each with its
 * limit and use %, like HAProxy's `show stat` for every virtual server.
 */
import type { ConnectionInfo } from '../daemon/net/registry.js';
import type { LimitsView } from '../admin/routes/limits.js';
import type { ScopeKind } from '../limits/types.js';
import { scopeField } from '../limits/resolve.js';
import { SERVICE_OF } from '../plan/build.js';
import { table } from '../plan/format.js';
import type { Protocol, Service } from '../spec/schema.js';
import { fanOut, type Fleet } from './fleet.js';
import { fmtRate, type RateTracker } from './haproxy-view.js';

export const TOP_SECTIONS = ['listener', 'domain', 'user', 'ip'] as const;
export type TopSection = (typeof TOP_SECTIONS)[number];

export interface TopRow {
  /** Listener name, domain, user address or client IP. */
  readonly id: string;
  readonly service: Service;
  /** Sessions now, summed over the nodes that answered. */
  readonly current: number;
  /** The effective cap (undefined when no node counts this scope yet). */
  readonly limit?: number;
  /** current / limit, 0..1+ (over 1 after a cap was lowered under the count). */
  readonly use?: number;
  /**
   * Refusals that touched this row since the nodes started: its own scope's, plus those of the scopes it
   * contains (a user+IP refusal counts on the user and on the IP; a user's on its domain; for listeners,
   * every refusal the daemons counted on that listener).
   */
  readonly refused: number;
  /** The same refusals by reason (the limit field that refused, or the listener's refusal reason). */
  readonly refusals: Readonly<Record<string, number>>;
  /** Connections per second since the previous refresh (listeners only; undefined on the first sample). */
  readonly rate?: number;
  /** Nodes holding these sessions. */
  readonly nodes: number;
}

export interface TopNode {
  readonly node: string;
  readonly ok: boolean;
  readonly error?: string;
  readonly hostname?: string;
  readonly connections?: number;
  readonly backend?: string;
}

export interface TopReport {
  readonly at: string;
  readonly nodes: readonly TopNode[];
  readonly total: number;
  readonly sections: Readonly<Record<TopSection, readonly TopRow[]>>;
}

interface NodeData {
  readonly connections: { hostname: string; connections: ConnectionInfo[] };
  readonly limits: LimitsView;
}

const KIND_OF: Record<TopSection, ScopeKind> = {
  listener: 'listener',
  domain: 'domain',
  user: 'user',
  ip: 'ip',
};

/** Collects one report from every node of the fleet. */
export interface CollectTopOptions {
  /** Keeps the previous sample of each listener's accepted total, so rows get a rate. @default - no rates */
  readonly rates?: RateTracker;
}

export async function collectTop(fleet: Fleet, opts: CollectTopOptions = {}): Promise<TopReport> {
  const results = await fanOut(fleet, async (c): Promise<NodeData> => {
    const [connections, limits] = await Promise.all([
      c.get<NodeData['connections']>('/v1/connections'),
      c.get<LimitsView>('/v1/limits'),
    ]);
    return { connections, limits };
  });
  const ok = results.flatMap((r) => (r.ok ? [{ node: r.node, ...r.value }] : []));
  const sections = Object.fromEntries(TOP_SECTIONS.map((s) => [s, rowsFor(s, ok)])) as Record<
    TopSection,
    TopRow[]
  >;
  if (opts.rates) {
    // Summed over the nodes that answered; a node missing from one sample shows as a restart (no rate).
    const accepted = new Map<string, number>();
    for (const n of ok) {
      // Every listener the node has, from 0: a listener's first connection must already count as a delta.
      for (const l of n.limits.limits)
        if (l.scope.startsWith('listener:')) accepted.set(l.scope.slice('listener:'.length), accepted.get(l.scope.slice('listener:'.length)) ?? 0);
      for (const a of n.limits.activity ?? []) accepted.set(a.listener, (accepted.get(a.listener) ?? 0) + a.accepted);
    }
    const answered = ok.map((n) => n.node).join(',');
    const rateOf = new Map([...accepted].map(([l, total]) => [l, opts.rates!.sample(`daemon|${answered}|${l}`, total)]));
    sections.listener = sections.listener.map((r) => {
      const rate = rateOf.get(r.id);
      return rate === undefined ? r : { ...r, rate };
    });
  }
  return {
    at: new Date().toISOString(),
    nodes: results.map((r) =>
      r.ok
        ? {
            node: r.node,
            ok: true,
            hostname: r.value.connections.hostname,
            connections: r.value.connections.connections.length,
            backend: r.value.limits.backend,
          }
        : { node: r.node, ok: false, error: r.error },
    ),
    total: ok.reduce((n, d) => n + d.connections.connections.length, 0),
    sections,
  };
}

function idOf(section: TopSection, c: ConnectionInfo): string | undefined {
  switch (section) {
    case 'listener':
      return c.listener;
    case 'ip':
      return c.remoteAddress;
    case 'user':
      return c.user;
    case 'domain':
      return c.user ? c.user.slice(c.user.lastIndexOf('@') + 1) : undefined;
  }
}


/** The row ids of a section that a counted scope touches (a user+IP scope touches its user and its IP). */
function touched(section: TopSection, kind: ScopeKind, id: string): string[] {
  const user = kind === 'userip' ? id.split('|')[0]! : kind === 'user' ? id : undefined;
  switch (section) {
    case 'listener':
      return kind === 'listener' ? [id] : [];
    case 'ip':
      return kind === 'ip' ? [id] : kind === 'userip' ? [id.slice(id.indexOf('|') + 1)] : [];
    case 'user':
      return user !== undefined ? [user] : [];
    case 'domain':
      return kind === 'domain' ? [id] : user !== undefined ? [user.slice(user.lastIndexOf('@') + 1)] : [];
  }
}

/** Builds one section: group connections, then join limits and refusals from the nodes' counters. */
export function rowsFor(section: TopSection, nodes: ReadonlyArray<NodeData & { node: string }>): TopRow[] {
  const rows = new Map<
    string,
    {
      id: string;
      service: Service;
      current: number;
      limit?: number;
      refused: number;
      refusals: Record<string, number>;
      nodes: Set<string>;
    }
  >();
  const row = (id: string, service: Service) => {
    const k = `${service}|${id.toLowerCase()}`;
    let r = rows.get(k);
    if (!r) {
      r = { id, service, current: 0, refused: 0, refusals: {}, nodes: new Set() };
      rows.set(k, r);
    }
    return r;
  };
  const refuse = (r: { refused: number; refusals: Record<string, number> }, reason: string, n: number) => {
    if (n === 0) return;
    r.refused += n;
    r.refusals[reason] = (r.refusals[reason] ?? 0) + n;
  };
  for (const n of nodes) {
    for (const c of n.connections.connections) {
      const id = idOf(section, c);
      if (id === undefined) continue;
      const r = row(id, c.service);
      r.current++;
      r.nodes.add(n.node);
    }
  }
  const kind = KIND_OF[section];
  for (const n of nodes) {
    for (const u of n.limits.use) {
      if (u.scope.kind === kind) {
        // Scopes without sessions matter only when they refused someone (the flooding user is often one).
        const k = `${u.scope.service}|${u.scope.id.toLowerCase()}`;
        if (!rows.has(k) && u.refused === 0) continue;
        const r = row(u.scope.id, u.scope.service);
        r.limit = Math.max(r.limit ?? 0, u.limit);
        if (section !== 'listener' || !n.limits.activity) refuse(r, scopeField(kind), u.refused);
        continue;
      }
      // Refusals of the narrower scopes count on every row they touched, with their reason.
      if (u.refused === 0 || section === 'listener') continue;
      for (const id of touched(section, u.scope.kind, u.scope.id)) refuse(row(id, u.scope.service), scopeField(u.scope.kind), u.refused);
    }
    if (section === 'listener')
      // The daemon counts every refusal on the listener it happened on, by reason (connect and SMTP AUTH).
      for (const a of n.limits.activity ?? []) {
        const total = Object.values(a.refusals).reduce((x, y) => x + y, 0);
        if (total === 0) continue;
        const r = [...rows.values()].find((x) => x.id === a.listener) ?? row(a.listener, SERVICE_OF[a.protocol as Protocol] ?? 'smtp');
        for (const [reason, count] of Object.entries(a.refusals)) refuse(r, reason, count);
      }
  }
  if (section === 'listener') {
    // Every listener has a cap even before it counts anything.
    for (const n of nodes)
      for (const l of n.limits.limits)
        if (l.scope.startsWith('listener:')) {
          const r = [...rows.values()].find((x) => x.id === l.scope.slice('listener:'.length));
          if (r && r.limit === undefined) r.limit = l.value;
        }
  }
  return [...rows.values()]
    .map((r) => ({
      id: r.id,
      service: r.service,
      current: r.current,
      limit: r.limit,
      use: r.limit ? r.current / r.limit : undefined,
      refused: r.refused,
      refusals: r.refusals,
      nodes: r.nodes.size,
    }))
    .sort(
      (a, b) =>
        b.current - a.current ||
        (b.use ?? 0) - (a.use ?? 0) ||
        b.refused - a.refused ||
        a.id.localeCompare(b.id),
    );
}


/** "3 (perUser 2, perIp 1)": a refusal count with its reasons. */
export function formatRefusals(refused: number, refusals: Readonly<Record<string, number>>): string {
  const why = Object.entries(refusals)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([k, n]) => `${k} ${n}`);
  return why.length === 0 ? String(refused) : `${refused} (${why.join(', ')})`;
}

export interface FormatTopOptions {
  /** Only this section. @default - all */
  readonly by?: TopSection;
  /** Rows per section. @default 10 */
  readonly rows?: number;
}

const TITLE: Record<TopSection, string> = {
  listener: 'Listeners (tenant × protocol: the virtual servers)',
  domain: 'Domains',
  user: 'Users',
  ip: 'Client IPs',
};

export function formatTop(r: TopReport, opts: FormatTopOptions = {}): string {
  const out: string[] = [];
  const down = r.nodes.filter((n) => !n.ok);
  out.push(
    `mailfleet top  ${r.at}  ${r.total} connection(s) on ${r.nodes.length - down.length}/${r.nodes.length} node(s)`,
  );
  for (const n of r.nodes)
    out.push(
      n.ok
        ? `  ${n.node}  ${n.hostname}  ${n.connections} conn  counters: ${n.backend}`
        : `  ${n.node}  DID NOT ANSWER: ${n.error}`,
    );
  const max = opts.rows ?? 10;
  for (const s of opts.by ? [opts.by] : TOP_SECTIONS) {
    const rows = r.sections[s];
    out.push('', `${TITLE[s]}${rows.length > max ? ` — top ${max} of ${rows.length}` : ''}`);
    if (rows.length === 0) {
      out.push('  (none)');
      continue;
    }
    out.push(
      table(
        [s, 'service', 'cur', 'limit', 'use%', 'conn/s', 'nodes', 'refused (why)'],
        rows
          .slice(0, max)
          .map((x) => [
            x.id,
            x.service,
            x.current,
            x.limit ?? '-',
            x.use === undefined ? '-' : `${Math.round(x.use * 100)}%`,
            fmtRate(x.rate),
            x.nodes,
            formatRefusals(x.refused, x.refusals),
          ]),
      ),
    );
  }
  return out.join('\n');
}
