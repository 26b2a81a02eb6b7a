import { MailfleetError } from '../../errors.js';
import { filterHealthOf } from '../../filter/health.js';
import type { AdminRoute } from '../types.js';

/**
 * The daemon's health, read by the mail node's health check (curl -f: any non-2xx fails it). 200 with
 * status ok or degraded; 503 when a check that affects health fails (today: the content filter with
 * onUnavailable tempfail, docs/filtering.md "Health").
 */
export const healthRoute: AdminRoute = {
  method: 'GET',
  path: '/healthz',
  handler: async (_req, ctx) => {
    const base = { hostname: ctx.config.hostname, connections: ctx.connections.size };
    const filter = await filterHealthOf(ctx)?.check();
    if (!filter) return { status: 'ok', ...base };
    const body = { status: filter.state === 'ok' ? 'ok' : filter.state === 'degraded' || !filter.affectsHealth ? 'degraded' : 'unhealthy', ...base, checks: { filter } };
    if (body.status === 'unhealthy')
      throw new MailfleetError('FILTER_UNAVAILABLE', `content filter failing: rspamd ${filter.rspamd} ${filter.ping === 'pong' ? `gave no verdict for ${filter.consecutiveFailures} scans in a row (${filter.lastError ?? ''})` : `does not answer /ping (${filter.ping})`}`, { status: 503, details: body });
    return body;
  },
};
