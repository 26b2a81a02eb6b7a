/**
 * GET /v1/limits: effective limits (plan, override, value), live overrides, recent changes, and current
 * use per counted scope, heaviest first. PUT /v1/limits: `{scope, value}` or a list of them (value null
 * or "default" removes an override); applied live and persisted all or nothing, answered per change
 * with the value before and after. Read and written by `mailfleet top` and `mailfleet limit`.
 */
import { MailfleetError } from '../../errors.js';
import { limitsOf, type DaemonLimits } from '../../limits/daemon.js';
import type { EffectiveLimitRow, LimitChange, LimitChangeRequest } from '../../limits/table.js';
import type { RecordedChange } from '../../limits/state-file.js';
import type { ScopeUse } from '../../limits/types.js';
import type { DaemonContext } from '../../daemon/context.js';
import type { AdminRoute } from '../types.js';

/** The body of GET /v1/limits. */
export interface LimitsView {
  readonly hostname: string;
  readonly backend: 'local' | 'redis';
  readonly limits: EffectiveLimitRow[];
  readonly overrides: Record<string, number>;
  readonly history: readonly RecordedChange[];
  /** Counted scopes, fullest first (ratio = current / limit). */
  readonly use: Array<ScopeUse & { ratio: number }>;
}

/** The body of PUT /v1/limits. */
export interface LimitsChangeView {
  readonly hostname: string;
  readonly changes: LimitChange[];
}

/** Recent changes returned by GET. */
const HISTORY_SHOWN = 20;

function limitsOrFail(ctx: DaemonContext): DaemonLimits {
  const l = limitsOf(ctx.admission);
  if (!l)
    throw new MailfleetError('NOT_FOUND', 'this daemon runs an admission without live limits', {
      status: 501,
    });
  return l;
}

export const getLimitsRoute: AdminRoute = {
  method: 'GET',
  path: '/v1/limits',
  handler: async (_req, ctx): Promise<LimitsView> => {
    const l = limitsOrFail(ctx);
    const use = (await ctx.admission.snapshot())
      .map((u) => ({ ...u, ratio: u.limit > 0 ? u.current / u.limit : 1 }))
      .sort((a, b) => b.ratio - a.ratio || b.current - a.current);
    return {
      hostname: ctx.config.hostname,
      backend: l.backend,
      limits: l.table.describe(),
      overrides: l.table.getOverrides(),
      history: l.table.getHistory().slice(-HISTORY_SHOWN),
      use,
    };
  },
};

function requests(body: unknown): LimitChangeRequest[] {
  const list = Array.isArray(body)
    ? body
    : body && typeof body === 'object' && 'changes' in body
      ? (body as { changes: unknown }).changes
      : [body];
  if (!Array.isArray(list) || list.length === 0)
    throw new MailfleetError('BAD_REQUEST', 'expected {"scope": "...", "value": N} or a list of them', {
      status: 400,
    });
  return list.map((x: unknown) => {
    const o = x as { scope?: unknown; value?: unknown };
    if (!o || typeof o.scope !== 'string' || !('value' in o))
      throw new MailfleetError(
        'BAD_REQUEST',
        'each change needs "scope" (string) and "value" (positive integer, or null / "default" to remove)',
        { status: 400 },
      );
    return { scope: o.scope, value: o.value as LimitChangeRequest['value'] };
  });
}

export const putLimitsRoute: AdminRoute = {
  method: 'PUT',
  path: '/v1/limits',
  handler: (req, ctx): LimitsChangeView => {
    const l = limitsOrFail(ctx);
    const actor = req.headers['x-mailfleet-actor'];
    const source = `admin-api${typeof actor === 'string' && actor ? ` (${actor.slice(0, 100)})` : ''}`;
    const changes = l.table.apply(requests(req.body), source);
    return { hostname: ctx.config.hostname, changes };
  },
};
