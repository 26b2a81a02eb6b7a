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
import { table } from '../plan/format.js';
import type { Service } from '../spec/schema.js';
import { fanOut, type Fleet } from './fleet.js';

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
  /** Refusals in this scope since the nodes started. */
  readonly refused: number;
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
export async function collectTop(fleet: Fleet): Promise<TopReport> {
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

/** Builds one section: group connections, then join limits and refusals from the nodes' counters. */
export function rowsFor(section: TopSection, nodes: ReadonlyArray<NodeData & { node: string }>): TopRow[] {
  const rows = new Map<
    string,
    { id: string; service: Service; current: number; limit?: number; refused: number; nodes: Set<string> }
  >();
  const row = (id: string, service: Service) => {
    const k = `${service}|${id.toLowerCase()}`;
    let r = rows.get(k);
    if (!r) {
      r = { id, service, current: 0, refused: 0, nodes: new Set() };
      rows.set(k, r);
    }
    return r;
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
      if (u.scope.kind !== kind) continue;
      // Scopes without sessions matter only when they refused someone (the flooding user is often one).
      const k = `${u.scope.service}|${u.scope.id.toLowerCase()}`;
      if (!rows.has(k) && u.refused === 0) continue;
      const r = row(u.scope.id, u.scope.service);
      r.limit = Math.max(r.limit ?? 0, u.limit);
      r.refused += u.refused;
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
        [s, 'service', 'cur', 'limit', 'use%', 'refused', 'nodes'],
        rows
          .slice(0, max)
          .map((x) => [
            x.id,
            x.service,
            x.current,
            x.limit ?? '-',
            x.use === undefined ? '-' : `${Math.round(x.use * 100)}%`,
            x.refused,
            x.nodes,
          ]),
      ),
    );
  }
  return out.join('\n');
}
