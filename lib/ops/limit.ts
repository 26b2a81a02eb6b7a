/**
 * `mailfleet limit set <scope> <value>` / `mailfleet limit list` across the fleet. A change goes through
 * every limit applier that handles its scope: the daemons (PUT /v1/limits on every node, each persists
 * it) and, for `listener:<name>`, the HAProxy tier. Each applier reports per target what changed and
 * which target did not answer. To put limits on another layer, add an applier to LIMIT_APPLIERS.
 */
import { MailfleetError } from '../errors.js';
import type { LimitsChangeView, LimitsView } from '../admin/routes/limits.js';
import { formatScope, parseLimitValue, parseScope } from '../limits/scope.js';
import type { EffectiveLimitRow } from '../limits/table.js';
import { table } from '../plan/format.js';
import { fanOut, fleetActor, type Fleet } from './fleet.js';
import { applyListenerLimitToLocalHaproxy, findLocalHaproxy } from './haproxy-applier.js';
import { collectHaproxyView } from './haproxy-view.js';
import { readListenerLimitsState } from '../haproxy/state.js';
import { buildPlan } from '../plan/build.js';
import type { Plan } from '../plan/types.js';
import { loadSpec } from '../spec/load.js';

/** One requested change as the CLI parsed it: a positive integer, or 'default' to drop the override. */
export interface LimitRequest {
  readonly scope: string;
  readonly value: number | 'default';
}

/** What one target (a daemon node, an HAProxy) did with one change. */
export interface LimitReport {
  readonly applier: string;
  readonly target: string;
  readonly scope: string;
  readonly ok: boolean;
  readonly before?: number;
  readonly after?: number;
  /** e.g. 'override removed', 'set live (process variable)', 'reloaded'. */
  readonly note?: string;
  readonly error?: string;
  /** True when the target answered and refused the change (HTTP 400), false when it did not answer. */
  readonly refused?: boolean;
  /** True when the target is absent rather than failing (no local HAProxy runs). */
  readonly skipped?: boolean;
}

export interface LimitApplier {
  readonly name: string;
  handles(scope: string): boolean;
  apply(fleet: Fleet, changes: readonly LimitRequest[]): Promise<LimitReport[]>;
}

/** Every daemon node: PUT /v1/limits, all changes in one request (all or nothing per node). */
export const daemonApplier: LimitApplier = {
  name: 'daemon',
  handles: () => true,
  async apply(fleet, changes) {
    const body = changes.map((c) => ({ scope: c.scope, value: c.value === 'default' ? null : c.value }));
    const results = await fanOut(fleet, (client) => client.put<LimitsChangeView>('/v1/limits', body));
    return results.flatMap((r): LimitReport[] =>
      r.ok
        ? r.value.changes.map((c) => ({
            applier: 'daemon',
            target: r.node,
            scope: c.scope,
            ok: true,
            before: c.before,
            after: c.after,
            note:
              c.override === null
                ? c.previousOverride === null
                  ? 'no override'
                  : 'override removed'
                : c.changed
                  ? 'override set'
                  : 'unchanged',
          }))
        : changes.map((c) => ({
            applier: 'daemon',
            target: r.node,
            scope: c.scope,
            ok: false,
            error: r.error,
            refused: r.status === 400,
          })),
    );
  },
};

/** The local HAProxy tier (when one runs from the data dir): `listener:<name>` is its frontend cap. */
export const haproxyApplier: LimitApplier = {
  name: 'haproxy',
  handles: (scope) => scope.startsWith('listener:'),
  async apply(fleet, changes) {
    const out: LimitReport[] = [];
    for (const c of changes) {
      const listener = c.scope.slice('listener:'.length);
      if (!fleet.dataDir) {
        out.push({
          applier: 'haproxy',
          target: 'local',
          scope: c.scope,
          ok: true,
          skipped: true,
          note: 'no data dir: HAProxy not looked for',
        });
        continue;
      }
      try {
        const r = await applyListenerLimitToLocalHaproxy(fleet.dataDir, listener, c.value, undefined, fleetActor(fleet));
        out.push(
          r
            ? {
                applier: 'haproxy',
                target: 'local',
                scope: c.scope,
                ok: true,
                before: r.previous,
                after: r.cap,
                note:
                  r.method === 'variable'
                    ? 'set live (process variable)'
                    : `reloaded (maxconn ${r.frontendMaxconn})`,
              }
            : {
                applier: 'haproxy',
                target: 'local',
                scope: c.scope,
                ok: true,
                skipped: true,
                note: 'no local HAProxy running',
              },
        );
      } catch (e) {
        out.push({
          applier: 'haproxy',
          target: 'local',
          scope: c.scope,
          ok: false,
          error: (e as Error).message,
        });
      }
    }
    return out;
  },
};

/** Where limit changes go, in order. The extension point for further layers. */
export const LIMIT_APPLIERS: LimitApplier[] = [daemonApplier, haproxyApplier];

/** Parses CLI arguments into requests; every error names the scope. */
export function parseLimitRequest(scope: string, value: string): LimitRequest {
  const canonical = formatScope(parseScope(scope));
  return { scope: canonical, value: value === 'default' ? 'default' : parseLimitValue(canonical, value) };
}

export async function setLimits(
  fleet: Fleet,
  changes: readonly LimitRequest[],
  appliers: readonly LimitApplier[] = LIMIT_APPLIERS,
): Promise<LimitReport[]> {
  if (changes.length === 0)
    throw new MailfleetError('BAD_REQUEST', 'no limit changes given', { status: 400 });
  const reports: LimitReport[] = [];
  for (const a of appliers) {
    const mine = changes.filter((c) => a.handles(c.scope));
    if (mine.length === 0) continue;
    const got = await a.apply(fleet, mine);
    // Every target that answered said no (an unknown user or listener, a bad value): that is the operator's
    // mistake, not an outage. Stop before the next layer and say it once, as a usage error (exit 2).
    const answered = got.filter((r) => r.ok || r.refused);
    if (answered.length > 0 && answered.every((r) => r.refused)) {
      const why = [...new Set(answered.map((r) => stripTarget(r.error ?? 'refused', r.target)))];
      throw new MailfleetError('BAD_REQUEST', why.join('; '), { status: 400, details: { reports: [...reports, ...got] } });
    }
    reports.push(...got);
  }
  return reports;
}

/** "http://n1:9025: unknown listener x" → "unknown listener x": the same refusal from every node reads once. */
function stripTarget(error: string, target: string): string {
  return error.startsWith(`${target}: `) ? error.slice(target.length + 2) : error;
}

export function formatLimitReports(reports: readonly LimitReport[]): string {
  const failed = reports.filter((r) => !r.ok);
  const lines = [
    table(
      ['target', 'scope', 'before', 'after', 'result'],
      reports.map((r) => [
        r.applier === 'daemon' ? r.target : `${r.applier} (${r.target})`,
        r.scope,
        r.before ?? '-',
        r.after ?? '-',
        r.ok ? (r.note ?? 'ok') : `FAILED: ${r.error}`,
      ]),
    ),
  ];
  const silent = failed.filter((f) => !f.refused);
  const refused = failed.filter((f) => f.refused);
  if (silent.length > 0)
    lines.push(
      '',
      `${new Set(silent.map((f) => f.target)).size} target(s) did not answer: run again once they answer.`,
    );
  if (refused.length > 0)
    lines.push('', `${new Set(refused.map((f) => f.target)).size} target(s) refused the change (see FAILED above).`);
  return lines.join('\n');
}

export interface LimitListing {
  readonly nodes: ReadonlyArray<{
    node: string;
    ok: boolean;
    error?: string;
    hostname?: string;
    backend?: string;
  }>;
  /** scope → value per node (nodes in the order above; undefined where a node did not answer). */
  readonly rows: ReadonlyArray<{
    scope: string;
    plan: number;
    values: Array<number | undefined>;
    overrides: Array<number | null | undefined>;
    /** Who set the live override and when, per node (undefined where none, or unknown). */
    setBy: Array<{ by?: string; at?: string } | undefined>;
  }>;
  /** The local HAProxy tier's listener caps (absent when none runs from the data dir). */
  readonly haproxy?: HaproxyListing;
}

export interface HaproxyListing {
  /** Where the rows come from: the runtime API socket and the spec of the plan. */
  readonly source: string;
  readonly error?: string;
  readonly rows: ReadonlyArray<{
    listener: string;
    /** The plan's cap (listenerConnections), the live one (the process variable), the frontend's maxconn. */
    plan?: number;
    live?: number;
    maxconn: number;
    scur: number;
    backend?: string;
    backendStatus?: string;
    /** A cap recorded by `limit set listener:<name>`: kept over the plan by the next render. */
    override?: { value: number; by?: string; at: string };
  }>;
}

export async function listLimits(fleet: Fleet): Promise<LimitListing> {
  const [results, haproxy] = await Promise.all([fanOut(fleet, (c) => c.get<LimitsView>('/v1/limits')), listHaproxy(fleet)]);
  const scopes = new Map<string, EffectiveLimitRow>();
  for (const r of results)
    if (r.ok) for (const row of r.value.limits) if (!scopes.has(row.scope)) scopes.set(row.scope, row);
  return {
    nodes: results.map((r) =>
      r.ok
        ? { node: r.node, ok: true, hostname: r.value.hostname, backend: r.value.backend }
        : { node: r.node, ok: false, error: r.error },
    ),
    rows: [...scopes.values()].map((s) => ({
      scope: s.scope,
      plan: s.plan,
      values: results.map((r) => (r.ok ? r.value.limits.find((x) => x.scope === s.scope)?.value : undefined)),
      overrides: results.map((r) =>
        r.ok ? (r.value.limits.find((x) => x.scope === s.scope)?.override ?? null) : undefined,
      ),
      setBy: results.map((r) => {
        const d = r.ok ? r.value.overrideDetails?.find((x) => x.scope === s.scope) : undefined;
        return d ? { by: d.by, at: d.at } : undefined;
      }),
    })),
    ...(haproxy ? { haproxy } : {}),
  };
}

async function listHaproxy(fleet: Fleet): Promise<HaproxyListing | undefined> {
  const info = fleet.dataDir ? findLocalHaproxy(fleet.dataDir) : undefined;
  if (!info) return undefined;
  const source = `HAProxy runtime API ${info.adminSocket}${info.specFile ? `, plan of ${info.specFile}` : ''}`;
  try {
    const view = await collectHaproxyView(info);
    let plan: Plan | undefined;
    try {
      plan = info.specFile ? buildPlan(loadSpec(info.specFile).spec) : undefined;
    } catch {
      plan = undefined; // the spec moved: live values are still worth showing
    }
    const recorded = readListenerLimitsState(info.limitsFile).listeners;
    return {
      source,
      rows: view.frontends
        .map((f) => {
          const rec = recorded[f.name];
          return {
            listener: f.name,
            plan: plan?.proxy.frontends[f.name]?.cap,
            live: f.cap,
            maxconn: f.slim,
            scur: f.scur,
            backend: f.backend,
            backendStatus: f.backendStatus,
            ...(rec ? { override: { value: rec.listenerConnections, by: rec.setBy, at: rec.setAt } } : {}),
          };
        })
        .sort((a, b) => a.listener.localeCompare(b.listener)),
    };
  } catch (e) {
    return { source, error: (e as Error).message, rows: [] };
  }
}

export function formatLimitListing(l: LimitListing, opts: { overridesOnly?: boolean } = {}): string {
  const out: string[] = [];
  for (const n of l.nodes)
    out.push(
      n.ok ? `${n.node}  ${n.hostname}  counters: ${n.backend}` : `${n.node}  DID NOT ANSWER: ${n.error}`,
    );
  const rows = l.rows.filter((r) => !opts.overridesOnly || r.overrides.some((o) => typeof o === 'number'));
  out.push(
    '',
    `Daemons (source: GET /v1/limits of each node)`,
    table(
      ['scope', 'plan', 'value', 'live override', 'set by', 'set at', 'nodes'],
      rows.map((r) => {
        const got = r.values.filter((v): v is number => v !== undefined);
        const same = got.every((v) => v === got[0]);
        const ov = [...new Set(r.overrides.filter((o): o is number => typeof o === 'number'))];
        const by = [...new Set(r.setBy.flatMap((x) => (x?.by ? [x.by] : [])))];
        const at = r.setBy.flatMap((x) => (x?.at ? [x.at] : [])).sort();
        return [
          r.scope,
          r.plan,
          same ? (got[0] ?? '-') : r.values.map((v) => v ?? '?').join('/'),
          ov.length === 0 ? '-' : ov.join('/'),
          by.length === 0 ? (ov.length === 0 ? '-' : '?') : by.join(', '),
          at.length === 0 ? '-' : at[at.length - 1]!,
          same ? `${got.length}/${l.nodes.length}` : 'DIFFER',
        ];
      }),
    ),
  );
  if (l.haproxy) {
    const h = l.haproxy;
    const hrows = h.rows.filter((r) => !opts.overridesOnly || r.override);
    out.push('', `HAProxy frontends (local tier; source: ${h.source})`);
    if (h.error) out.push(`  DID NOT ANSWER: ${h.error}`);
    else
      out.push(
        table(
          ['scope', 'plan', 'value', 'maxconn', 'scur', 'backend', 'backend state', 'live override', 'set by', 'set at'],
          hrows.map((r) => [
            `listener:${r.listener}`,
            r.plan ?? '-',
            r.live ?? '-',
            r.maxconn,
            r.scur,
            r.backend ?? '-',
            r.backendStatus ?? '-',
            r.override ? r.override.value : '-',
            r.override ? (r.override.by ?? '?') : '-',
            r.override ? r.override.at : '-',
          ]),
        ),
      );
  }
  return out.join('\n');
}

/**
 * `mailfleet limit reset [scope...]`: drops live overrides (the same as `limit set <scope> default`). Without
 * scopes, every override any daemon or the local HAProxy holds. Returns no reports when there was none.
 */
export async function resetLimits(fleet: Fleet, scopes: readonly string[] = []): Promise<LimitReport[]> {
  let wanted = scopes.map((s) => formatScope(parseScope(s)));
  if (wanted.length === 0) {
    const listing = await listLimits(fleet);
    const silent = listing.nodes.filter((n) => !n.ok);
    if (silent.length > 0)
      throw new MailfleetError('INTERNAL', `cannot list every override: ${silent.map((n) => `${n.node} did not answer (${n.error})`).join('; ')}`);
    const found = new Set<string>();
    for (const r of listing.rows) if (r.overrides.some((o) => typeof o === 'number')) found.add(r.scope);
    for (const r of listing.haproxy?.rows ?? []) if (r.override) found.add(`listener:${r.listener}`);
    wanted = [...found].sort();
  }
  if (wanted.length === 0) return [];
  return setLimits(
    fleet,
    wanted.map((scope) => ({ scope, value: 'default' as const })),
  );
}
