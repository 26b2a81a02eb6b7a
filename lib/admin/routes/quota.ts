/**
 * Quota routes (lib/quota), read and written by `mailfleet quota`:
 *   GET  /v1/quota?top=N           every mailbox on the volume, largest first (N of them), and each served domain
 *   GET  /v1/quota/:target         one user (user@domain) or one domain: usage, limits and where each limit comes from
 *   PUT  /v1/quota/:target         live override `{storageBytes?, messages?}` (null drops it), persisted
 *   PUT  /v1/quota/:target/recalc  recompute a user's usage from the Maildir
 */
import { MailfleetError } from '../../errors.js';
import { quotaOf, type DomainQuotaStatus, type QuotaOverride, type RecalcResult, type UserQuotaStatus } from '../../quota/index.js';
import type { AdminRoute } from '../types.js';

export interface QuotaListView {
  readonly hostname: string;
  readonly users: UserQuotaStatus[];
  readonly domains: DomainQuotaStatus[];
}

export interface QuotaSetView {
  readonly hostname: string;
  readonly target: string;
  readonly before?: QuotaOverride;
  readonly after?: QuotaOverride;
}

export interface QuotaRecalcView extends RecalcResult {
  readonly hostname: string;
}

function overrideBody(body: unknown): QuotaOverride | null {
  if (body === null || body === 'default') return null;
  if (typeof body !== 'object' || body === undefined || Array.isArray(body)) throw bad('expected {storageBytes?, messages?} or null');
  const out: { storageBytes?: number; messages?: number } = {};
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    if (k !== 'storageBytes' && k !== 'messages') throw bad(`unknown field ${k}`);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(`${k} must be a non-negative integer (0 = unlimited)`);
    out[k] = v;
  }
  if (Object.keys(out).length === 0) throw bad('give storageBytes and/or messages');
  return out;
}

function bad(text: string): MailfleetError {
  return new MailfleetError('BAD_REQUEST', text, { status: 400 });
}

export const listQuotaRoute: AdminRoute = {
  method: 'GET',
  path: '/v1/quota',
  handler: async (req, ctx): Promise<QuotaListView> => {
    const q = quotaOf(ctx);
    const topText = req.query.get('top');
    const top = topText === null ? undefined : Number(topText);
    if (top !== undefined && (!Number.isSafeInteger(top) || top < 1)) throw bad('top must be a positive integer');
    return {
      hostname: ctx.config.hostname,
      users: await q.list(top),
      domains: await Promise.all(ctx.config.domains.map((d) => q.domainStatus(d, true))),
    };
  },
};

export const getQuotaRoute: AdminRoute = {
  method: 'GET',
  path: '/v1/quota/:target',
  handler: async (req, ctx): Promise<UserQuotaStatus | DomainQuotaStatus> => {
    const t = req.params.target!;
    const q = quotaOf(ctx);
    return t.includes('@') ? q.status(t) : q.domainStatus(t, true);
  },
};

export const putQuotaRoute: AdminRoute = {
  method: 'PUT',
  path: '/v1/quota/:target',
  handler: (req, ctx): QuotaSetView => ({ hostname: ctx.config.hostname, ...quotaOf(ctx).setOverride(req.params.target!, overrideBody(req.body)) }),
};

export const recalcQuotaRoute: AdminRoute = {
  method: 'PUT',
  path: '/v1/quota/:target/recalc',
  handler: async (req, ctx): Promise<QuotaRecalcView> => {
    const t = req.params.target!;
    if (!t.includes('@')) throw bad('recalc takes a user (user@domain)');
    return { hostname: ctx.config.hostname, ...(await quotaOf(ctx).recalc(t)) };
  },
};

export const QUOTA_ROUTES: readonly AdminRoute[] = [listQuotaRoute, getQuotaRoute, putQuotaRoute, recalcQuotaRoute];
