/**
 * GET /v1/governor/sample: only what the governor reads every interval, in one cheap answer. The governor
 * used to ask three routes per node and tick (/v1/connections, /v1/limits and /metrics); /metrics alone
 * runs every collector of the registry (process and heap gauges, the limit gauges, each taking an
 * admission snapshot) and prints hundreds of lines, for four numbers. Here: the sessions by the fields
 * they are grouped by, the counted scopes and overrides, and the counters the load signals are taken
 * from, read straight from their metric objects.
 */
import { limitsOf } from '../../limits/daemon.js';
import type { EffectiveLimitRow } from '../../limits/table.js';
import type { ScopeUse } from '../../limits/types.js';
import type { LoginActivityRow } from '../../daemon/login-gate.js';
import type { Service } from '../../spec/schema.js';
import type { AdminRoute } from '../types.js';
import { MailfleetError } from '../../errors.js';
import type { OverrideDetail } from './limits.js';
import { overrideDetails } from './limits.js';

/** The body of GET /v1/governor/sample. */
export interface GovernorSampleView {
  readonly hostname: string;
  readonly backend: 'local' | 'redis';
  /** Live sessions: only the fields `mailfleet top` groups by. */
  readonly sessions: ReadonlyArray<{ readonly listener: string; readonly service: Service; readonly remoteAddress: string; readonly user?: string }>;
  /** Counted scopes (as GET /v1/limits `use`, without the ratio). */
  readonly use: readonly ScopeUse[];
  readonly overrides: Readonly<Record<string, number>>;
  readonly overrideDetails: readonly OverrideDetail[];
  /** The effective rows of the listener scopes only (every listener has a cap before it counts anything). */
  readonly listenerLimits: readonly EffectiveLimitRow[];
  /**
   * Users' logins on this node since start: password checks passed, refusals by their login rate, and the
   * rate (loginsPerMinutePerUser with overrides; 0 none). Empty from a daemon whose gate does not report them.
   */
  readonly logins: ReadonlyArray<LoginActivityRow & { readonly limit: number }>;
  readonly counters: {
    /** Event-loop delay p99 since the previous read of the lag gauge (this route or a scrape), ms. */
    readonly lagP99Ms: number;
    /** Process CPU, user + system, seconds since start. */
    readonly cpuSeconds: number;
    /** mailfleetd_connections_refused_total, all labels. */
    readonly refused: number;
    /** mailfleetd_delivery_seconds buckets summed over protocols: [upper bound s (null: +Inf), cumulative count]. */
    readonly delivery: ReadonlyArray<readonly [number | null, number]>;
  };
}

export const governorSampleRoute: AdminRoute = {
  method: 'GET',
  path: '/v1/governor/sample',
  handler: async (_req, ctx): Promise<GovernorSampleView> => {
    const l = limitsOf(ctx.admission);
    if (!l) throw new MailfleetError('NOT_FOUND', 'this daemon runs an admission without live limits', { status: 501 });
    const m = ctx.metrics;
    const [use, lag, refused, delivery] = await Promise.all([ctx.admission.snapshot(), m.eventLoopLag.get(), m.connectionsRefused.get(), m.deliverySeconds.get()]);
    const buckets = new Map<number | null, number>();
    for (const v of delivery.values) {
      if (!v.metricName?.endsWith('_bucket')) continue;
      const bound = (v.labels as Record<string, string | number | undefined>).le;
      const le = bound === '+Inf' ? null : Number(bound);
      buckets.set(le, (buckets.get(le) ?? 0) + v.value);
    }
    const cpu = process.cpuUsage();
    const overrides = l.table.getOverrides();
    return {
      hostname: ctx.config.hostname,
      backend: l.backend,
      sessions: ctx.connections.list().map((c) => ({ listener: c.listener, service: c.service, remoteAddress: c.remoteAddress, ...(c.user ? { user: c.user } : {}) })),
      use,
      overrides,
      overrideDetails: overrideDetails(overrides, l.table.getHistory()),
      listenerLimits: l.table.describe().filter((r) => r.scope.startsWith('listener:')),
      logins: (ctx.logins.activity?.() ?? []).map((r) => ({ ...r, limit: l.table.userRateOf('loginsPerMinutePerUser', r.user) })),
      counters: {
        lagP99Ms: (lag.values.find((v) => v.labels.quantile === '0.99')?.value ?? 0) * 1000,
        cpuSeconds: (cpu.user + cpu.system) / 1e6,
        refused: refused.values.reduce((s, v) => s + v.value, 0),
        delivery: [...buckets].sort((a, b) => (a[0] ?? Infinity) - (b[0] ?? Infinity)),
      },
    };
  },
};
