/**
 * The governor's eyes: one snapshot of the fleet from every daemon's admin API — GET /v1/governor/sample,
 * one cheap answer with the sessions, counted scopes, overrides and the counters of the load signals
 * (grouped by the same rowsFor as `mailfleet top`). A daemon without that route (older) is read the old
 * way: GET /v1/connections, GET /v1/limits and GET /metrics. Rates (CPU, refusals, each scope's own
 * refusals) and the storage-latency p99 are deltas between two snapshots, so the first one has none.
 */
import type { ConnectionInfo } from '../daemon/net/registry.js';
import type { LimitsView } from '../admin/routes/limits.js';
import type { GovernorSampleView } from '../admin/routes/governor-sample.js';
import { fanOut, type Fleet } from '../ops/fleet.js';
import { rowsFor, type TopSection } from '../ops/top.js';
import type { GovernedKind, GovernorSignal } from './config.js';
import type { GovernorSnapshot, ScopeLoad } from './types.js';

/** One parsed Prometheus sample. */
export interface PromSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** The Prometheus text format, as prom-client writes it (no escapes inside our label values but \" and \\). */
export function parsePrometheus(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const brace = line.indexOf('{');
    const space = line.lastIndexOf(' ');
    if (space < 0) continue;
    const value = Number(line.slice(space + 1));
    if (Number.isNaN(value)) continue;
    if (brace < 0 || brace > space) {
      out.push({ name: line.slice(0, space), labels: {}, value });
      continue;
    }
    const close = line.lastIndexOf('}');
    const labels: Record<string, string> = {};
    let i = brace + 1;
    while (i < close) {
      const eq = line.indexOf('=', i);
      if (eq < 0 || line[eq + 1] !== '"') break;
      const key = line.slice(i, eq).trim();
      let j = eq + 2;
      let v = '';
      while (j < close && line[j] !== '"') {
        if (line[j] === '\\' && j + 1 < close) j++;
        v += line[j];
        j++;
      }
      labels[key] = v;
      i = j + 1;
      if (line[i] === ',') i++;
    }
    out.push({ name: line.slice(0, brace), labels, value });
  }
  return out;
}

/** What one node's metrics said at one time: the counters deltas are taken from. */
export interface NodeSample {
  readonly at: number;
  readonly lagP99Ms?: number;
  readonly cpuSeconds?: number;
  readonly refused: number;
  /** Delivery histogram buckets summed over protocols: upper bound (s) → cumulative count. */
  readonly delivery: ReadonlyArray<readonly [number, number]>;
  /** Refusals since start per governed scope on this node (the per-scope refusal rate is its delta). */
  readonly scopeRefused?: ReadonlyMap<string, number>;
  /** Per user: logins checked since start, and the user's login rate (0: none) on this node. */
  readonly logins?: ReadonlyMap<string, { readonly checked: number; readonly limit: number }>;
}

export function nodeSample(at: number, samples: readonly PromSample[]): NodeSample {
  let lag: number | undefined;
  let cpu: number | undefined;
  let refused = 0;
  const buckets = new Map<number, number>();
  for (const s of samples) {
    if (s.name === 'mailfleetd_event_loop_lag_seconds' && s.labels.quantile === '0.99') lag = s.value * 1000;
    else if (s.name === 'mailfleetd_process_cpu_seconds_total') cpu = s.value;
    else if (s.name === 'mailfleetd_connections_refused_total') refused += s.value;
    else if (s.name === 'mailfleetd_delivery_seconds_bucket') {
      const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
      buckets.set(le, (buckets.get(le) ?? 0) + s.value);
    }
  }
  return { at, lagP99Ms: lag, cpuSeconds: cpu, refused, delivery: [...buckets].sort((a, b) => a[0] - b[0]) };
}

/**
 * p99 of the deliveries between two samples, in ms; undefined without any. Interpolated linearly inside the
 * bucket the 99th percentile falls in, as Prometheus' histogram_quantile does: the bucket's upper bound
 * alone rounds every target and release threshold up to a bound (a target of 56 ms acted at 50).
 */
export function deliveryP99Ms(prev: NodeSample, now: NodeSample): number | undefined {
  const before = new Map(prev.delivery);
  const delta = now.delivery.map(([le, n]) => [le, n - (before.get(le) ?? 0)] as const);
  const count = delta.find(([le]) => le === Infinity)?.[1] ?? 0;
  if (count <= 0) return undefined;
  const finite = delta.filter(([le]) => Number.isFinite(le));
  const rank = 0.99 * count;
  let lower = 0;
  let below = 0;
  for (const [le, n] of finite) {
    if (n >= rank) return (lower + (le - lower) * (n > below ? (rank - below) / (n - below) : 1)) * 1000;
    lower = le;
    below = n;
  }
  // Beyond the largest bucket: say twice it (the histogram cannot tell more).
  return (finite[finite.length - 1]?.[0] ?? 1) * 2000;
}

interface NodeRead {
  readonly connections: { hostname: string; connections: ConnectionInfo[] };
  readonly limits: LimitsView;
  readonly metrics: NodeSample;
  /** Refusals since start by each user's login rate, keyed by its login scope. */
  readonly loginRefused?: ReadonlyMap<string, number>;
}

/** How the governor reads the daemons. */
export interface ReadFleetOptions {
  /**
   * Read the old way (three routes) even where /v1/governor/sample exists; for comparing the two.
   * @default false
   */
  readonly legacy?: boolean;
}

/** One node through GET /v1/governor/sample, shaped as the old reads so one grouping serves both. */
function fromSample(at: number, v: GovernorSampleView): NodeRead {
  return {
    connections: { hostname: v.hostname, connections: v.sessions as ConnectionInfo[] },
    // No listener activity: a listener's refusals are then counted from its scope, as without it.
    limits: {
      hostname: v.hostname,
      backend: v.backend,
      limits: [...v.listenerLimits],
      overrides: { ...v.overrides },
      history: [],
      use: v.use.map((u) => ({ ...u, ratio: u.limit > 0 ? u.current / u.limit : 1 })),
      overrideDetails: [...v.overrideDetails],
    } as unknown as LimitsView,
    metrics: {
      at,
      lagP99Ms: v.counters.lagP99Ms,
      cpuSeconds: v.counters.cpuSeconds,
      refused: v.counters.refused,
      delivery: v.counters.delivery.map(([le, n]) => [le ?? Infinity, n] as const),
      logins: new Map((v.logins ?? []).map((r) => [r.user, { checked: r.checked, limit: r.limit }])),
    },
    loginRefused: new Map((v.logins ?? []).map((r) => [loginScope(r.user), r.rateRefused])),
  };
}

export interface FleetReading {
  readonly snapshot: GovernorSnapshot;
  /** Per node URL: its metrics sample (the next reading's deltas start from it). */
  readonly samples: ReadonlyMap<string, NodeSample>;
  readonly answered: number;
  readonly failed: ReadonlyArray<{ node: string; error: string }>;
}

/** The kinds counted in sessions, grouped as `mailfleet top` groups them (login scopes come from the logins). */
type SessionKind = Exclude<GovernedKind, 'login'>;
const SECTION_OF: Readonly<Record<SessionKind, TopSection>> = { user: 'user', ip: 'ip', domain: 'domain', listener: 'listener' };

/** The service a login scope counts under: one pool for all services (a login rate covers them all). */
export const LOGIN_SERVICE = 'login';

/** What ends every login scope (after the user's address). */
const LOGIN_SCOPE_SUFFIX = ':rates.loginsPerMinutePerUser';

/** The limit scope of one user's login rate. */
export function loginScope(user: string): string {
  return `user:${user.toLowerCase()}${LOGIN_SCOPE_SUFFIX}`;
}

/** The limit scope a row of `mailfleet top` is governed through. */
export function scopeOf(kind: GovernedKind, id: string, service: string): string {
  switch (kind) {
    case 'user':
      return `user:${id.toLowerCase()}:${service}`;
    case 'ip':
      return `ip:${id.toLowerCase()}:${service}`;
    case 'domain':
      return `${service}.perDomain@${id.toLowerCase()}`;
    case 'listener':
      return `listener:${id}`;
    case 'login':
      return loginScope(id);
  }
}

/**
 * Reads every node once. `managed` scopes are always reported (from the live overrides) even when they
 * hold no session, so the governor can raise them back after the flood is gone.
 */
export async function readFleet(
  fleet: Fleet,
  prev: ReadonlyMap<string, NodeSample>,
  managed: readonly string[],
  now: () => number = Date.now,
  opts: ReadFleetOptions = {},
): Promise<FleetReading> {
  const results = await fanOut(fleet, async (c): Promise<NodeRead> => {
    if (!opts.legacy) {
      try {
        return fromSample(now(), await c.get<GovernorSampleView>('/v1/governor/sample'));
      } catch (e) {
        // A daemon older than the route answers 404: read it the old way.
        if ((e as { status?: number }).status !== 404) throw e;
      }
    }
    const [connections, limits, text] = await Promise.all([
      c.get<NodeRead['connections']>('/v1/connections'),
      c.get<LimitsView>('/v1/limits'),
      fetchText(`${c.url}/metrics`, c.node.token, fleet.timeoutMs),
    ]);
    return { connections, limits, metrics: nodeSample(now(), parsePrometheus(text)) };
  });
  const ok = results.flatMap((r) => (r.ok ? [{ node: r.node, ...r.value }] : []));
  const at = now();
  const signals: Partial<Record<GovernorSignal, number>> = {};
  const samples = new Map<string, NodeSample>();
  let refusedRate: number | undefined;
  const scopes = ok.length > 0 ? scopeLoads(ok, managed) : [];
  for (const n of ok) {
    const m: NodeSample = { ...n.metrics, scopeRefused: new Map([...(scopes.length > 0 ? refusedByScope(n) : []), ...(n.loginRefused ?? [])]) };
    samples.set(n.node, m);
    if (m.lagP99Ms !== undefined) signals.eventLoopLagMs = Math.max(signals.eventLoopLagMs ?? 0, m.lagP99Ms);
    const p = prev.get(n.node);
    if (!p) continue;
    const dt = (m.at - p.at) / 1000;
    if (dt <= 0) continue;
    if (m.cpuSeconds !== undefined && p.cpuSeconds !== undefined)
      signals.cpuPercent = Math.max(signals.cpuPercent ?? 0, ((m.cpuSeconds - p.cpuSeconds) / dt) * 100);
    const p99 = deliveryP99Ms(p, m);
    if (p99 !== undefined) signals.storageLatencyMs = Math.max(signals.storageLatencyMs ?? 0, p99);
    // A counter that went down is a restarted daemon: count from zero.
    refusedRate = (refusedRate ?? 0) + Math.max(0, m.refused >= p.refused ? m.refused - p.refused : m.refused) / dt;
  }
  if (refusedRate !== undefined) signals.refusalsPerSecond = refusedRate;
  if (ok.length > 0) signals.connections = ok.reduce((s, n) => s + n.connections.connections.length, 0);

  if (ok.length > 0) addLoginLoads(scopes, ok, samples, prev, managed);
  return {
    snapshot: { at, signals, scopes: withRefusalRates(scopes, samples, prev) },
    samples,
    answered: ok.length,
    failed: results.flatMap((r) => (r.ok ? [] : [{ node: r.node, error: r.error }])),
  };
}

/** The live overrides the nodes hold (the first node's value where they differ), with who set each. */
function overridesOf(nodes: ReadonlyArray<NodeRead & { node: string }>): Map<string, { value: number; by?: string }> {
  const overrides = new Map<string, { value: number; by?: string }>();
  for (const n of nodes)
    for (const [scope, value] of Object.entries(n.limits.overrides))
      if (!overrides.has(scope)) overrides.set(scope, { value, by: n.limits.overrideDetails?.find((d) => d.scope === scope)?.by });
  return overrides;
}

function scopeLoads(nodes: ReadonlyArray<NodeRead & { node: string }>, managed: readonly string[]): ScopeLoad[] {
  const overrides = overridesOf(nodes);
  // A listener carrying sessions of several domains is shared, not a tenant's: never a governed scope.
  const domainsOn = new Map<string, Set<string>>();
  for (const n of nodes)
    for (const c of n.connections.connections)
      if (c.user) domainsOn.set(c.listener, (domainsOn.get(c.listener) ?? new Set()).add(c.user.slice(c.user.lastIndexOf('@') + 1).toLowerCase()));
  const out = new Map<string, ScopeLoad>();
  for (const kind of Object.keys(SECTION_OF) as SessionKind[]) {
    for (const row of rowsFor(SECTION_OF[kind], nodes)) {
      if (kind === 'listener' && (row.id.startsWith('default-') || (domainsOn.get(row.id)?.size ?? 0) > 1)) continue;
      const scope = scopeOf(kind, row.id, row.service);
      const o = overrides.get(scope);
      out.set(scope, {
        scope,
        kind,
        service: row.service,
        current: (out.get(scope)?.current ?? 0) + row.current,
        limit: o?.value ?? row.limit,
        override: o?.value ?? null,
        ...(o?.by ? { setBy: o.by } : {}),
      });
    }
  }
  for (const scope of managed) {
    // Login scopes are added with their rates by addLoginLoads.
    if (out.has(scope) || scope.includes(':rates.')) continue;
    const o = overrides.get(scope);
    const kind: GovernedKind = scope.startsWith('user:') ? 'user' : scope.startsWith('ip:') ? 'ip' : scope.startsWith('listener:') ? 'listener' : 'domain';
    out.set(scope, { scope, kind, service: scope.startsWith('listener:') ? '' : serviceOf(scope), current: 0, limit: o?.value, override: o?.value ?? null, ...(o?.by ? { setBy: o.by } : {}) });
  }
  return [...out.values()];
}

/**
 * One scope per user with logins on a node read both times (and every managed login scope): its logins per
 * minute since the previous reading, summed over the nodes, and its login rate (undefined: none). A count
 * that went down is a restarted daemon (or a forgotten idle user): counted from zero.
 */
function addLoginLoads(
  scopes: ScopeLoad[],
  nodes: ReadonlyArray<NodeRead & { node: string }>,
  now: ReadonlyMap<string, NodeSample>,
  prev: ReadonlyMap<string, NodeSample>,
  managed: readonly string[],
): void {
  const perMinute = new Map<string, number>();
  const limits = new Map<string, number>();
  for (const [node, m] of now) {
    const p = prev.get(node);
    for (const [user, r] of m.logins ?? []) {
      const scope = loginScope(user);
      limits.set(scope, Math.max(limits.get(scope) ?? 0, r.limit));
      if (!p || m.at <= p.at) continue;
      const before = p.logins?.get(user)?.checked ?? 0;
      const delta = r.checked >= before ? r.checked - before : r.checked;
      perMinute.set(scope, (perMinute.get(scope) ?? 0) + (delta * 60_000) / (m.at - p.at));
    }
  }
  const overrides = overridesOf(nodes);
  const wanted = new Set([...perMinute.keys(), ...managed.filter((s) => s.endsWith(LOGIN_SCOPE_SUFFIX))]);
  for (const scope of wanted) {
    const o = overrides.get(scope);
    const limit = o?.value ?? limits.get(scope);
    scopes.push({
      scope,
      kind: 'login',
      service: LOGIN_SERVICE,
      current: Math.round(perMinute.get(scope) ?? 0),
      ...(limit !== undefined && limit > 0 ? { limit } : {}),
      override: o?.value ?? null,
      ...(o?.by ? { setBy: o.by } : {}),
    });
  }
}

/** This node's refusals since start per governed scope (rowsFor counts a narrower scope's on every row it touches). */
function refusedByScope(n: NodeRead & { node: string }): Map<string, number> {
  const out = new Map<string, number>();
  for (const kind of Object.keys(SECTION_OF) as SessionKind[])
    for (const row of rowsFor(SECTION_OF[kind], [n])) if (row.refused > 0) out.set(scopeOf(kind, row.id, row.service), row.refused);
  return out;
}

/** Each scope's own refusals per second since the previous reading, summed over the nodes read both times. */
function withRefusalRates(scopes: readonly ScopeLoad[], now: ReadonlyMap<string, NodeSample>, prev: ReadonlyMap<string, NodeSample>): ScopeLoad[] {
  const nodes = [...now].flatMap(([node, m]) => {
    const p = prev.get(node);
    return p && m.at > p.at ? [{ m, p, dt: (m.at - p.at) / 1000 }] : [];
  });
  if (nodes.length === 0) return [...scopes];
  return scopes.map((s) => {
    let rate = 0;
    for (const { m, p, dt } of nodes) {
      const a = m.scopeRefused?.get(s.scope) ?? 0;
      const b = p.scopeRefused?.get(s.scope) ?? 0;
      // A count that went down is a restarted daemon: count from zero.
      rate += (a >= b ? a - b : a) / dt;
    }
    return { ...s, refusalsPerSecond: rate };
  });
}

function serviceOf(scope: string): string {
  if (scope.startsWith('user:') || scope.startsWith('ip:')) return scope.slice(scope.lastIndexOf(':') + 1);
  return scope.slice(0, scope.indexOf('.'));
}

async function fetchText(url: string, token: string | undefined, timeoutMs: number): Promise<string> {
  const res = await fetch(url, { headers: token ? { Authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.text();
}
