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
import { fanOut, type Fleet } from './fleet.js';
import { applyListenerLimitToLocalHaproxy } from './haproxy-applier.js';

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
        const r = await applyListenerLimitToLocalHaproxy(fleet.dataDir, listener, c.value);
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
    if (mine.length > 0) reports.push(...(await a.apply(fleet, mine)));
  }
  return reports;
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
  if (failed.length > 0)
    lines.push(
      '',
      `${new Set(failed.map((f) => f.target)).size} target(s) did not apply the change: run again once they answer.`,
    );
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
  }>;
}

export async function listLimits(fleet: Fleet): Promise<LimitListing> {
  const results = await fanOut(fleet, (c) => c.get<LimitsView>('/v1/limits'));
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
    })),
  };
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
    table(
      ['scope', 'plan', 'value', 'live override', 'nodes'],
      rows.map((r) => {
        const got = r.values.filter((v): v is number => v !== undefined);
        const same = got.every((v) => v === got[0]);
        const ov = [...new Set(r.overrides.filter((o): o is number => typeof o === 'number'))];
        return [
          r.scope,
          r.plan,
          same ? (got[0] ?? '-') : r.values.map((v) => v ?? '?').join('/'),
          ov.length === 0 ? '-' : ov.join('/'),
          same ? `${got.length}/${l.nodes.length}` : 'DIFFER',
        ];
      }),
    ),
  );
  return out.join('\n');
}
