/**
 * GET /v1/limits: effective limits (plan, override, value), live overrides, recent changes, and current
 * use per counted scope, heaviest first. PUT /v1/limits: `{scope, value}` or a list of them (value null
 * or "default" removes an override); applied live and persisted all or nothing, answered per change
 * with the value before and after. Read and written by `mailfleet top` and `mailfleet limit`.
 */
import { MailfleetError } from '../../errors.js';
import { limitsOf, type DaemonLimits } from '../../limits/daemon.js';
import { parseScope } from '../../limits/scope.js';
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
  /** Each live override with who set it and when (from the change history; by/at absent for hand edits). */
  readonly overrideDetails: OverrideDetail[];
  /** Per listener of this node: connections accepted since start, and refusals by reason. */
  readonly activity: ListenerActivity[];
}

export interface OverrideDetail {
  readonly scope: string;
  readonly value: number;
  /** Who set it: the X-Mailfleet-Actor of the change (the CLI sends --by, else the OS user). */
  readonly by?: string;
  /** ISO time of the change. */
  readonly at?: string;
}

export interface ListenerActivity {
  readonly listener: string;
  readonly protocol: string;
  /** Connections accepted since the daemon started (a monotonic total: rate = delta / seconds). */
  readonly accepted: number;
  /**
   * Refusals on this listener by reason: connect-time ones (port-full, limit-ip, limit-listener, shutdown, …)
   * and, for SMTP, those at AUTH (limit-user, limit-userip, limit-domain, auth-locked).
   */
  readonly refusals: Record<string, number>;
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
      overrideDetails: overrideDetails(l.table.getOverrides(), l.table.getHistory()),
      activity: await listenerActivity(ctx),
    };
  },
};

/** The actor inside a change's source ("admin-api (alice@ops)" → "alice@ops"). */
export function actorOf(source: string | undefined): string | undefined {
  if (!source) return undefined;
  const open = source.indexOf(' (');
  return open >= 0 && source.endsWith(')') ? source.slice(open + 2, -1) : source;
}

export function overrideDetails(overrides: Record<string, number>, history: readonly RecordedChange[]): OverrideDetail[] {
  return Object.entries(overrides).map(([scope, value]) => {
    let last: RecordedChange | undefined;
    for (let i = history.length - 1; i >= 0 && !last; i--) if (history[i]!.scope === scope) last = history[i];
    // A change in the history that does not match the live value means the file was edited by hand.
    const known = last && last.value === value ? last : undefined;
    return { scope, value, by: actorOf(known?.source), at: known?.at };
  });
}

/** Reasons of SMTP refusals that are admission or lockout refusals (the rest are per message). */
const ADMISSION_REASON = /^(limit-|auth-locked$)/;

async function listenerActivity(ctx: DaemonContext): Promise<ListenerActivity[]> {
  const m = ctx.metrics;
  const [accepted, refused, rejected] = await Promise.all([m.connectionsTotal.get(), m.connectionsRefused.get(), m.messagesRejected.get()]);
  const rows = new Map<string, { listener: string; protocol: string; accepted: number; refusals: Record<string, number> }>();
  const row = (labels: Partial<Record<string, string | number>>) => {
    const listener = String(labels.listener ?? '');
    let r = rows.get(listener);
    if (!r) {
      r = { listener, protocol: String(labels.protocol ?? ''), accepted: 0, refusals: {} };
      rows.set(listener, r);
    }
    return r;
  };
  for (const v of accepted.values) row(v.labels).accepted += v.value;
  for (const v of [...refused.values, ...rejected.values]) {
    const reason = String(v.labels.reason ?? 'unknown');
    if (v.value === 0 || (refused.values.indexOf(v) < 0 && !ADMISSION_REASON.test(reason))) continue;
    const r = row(v.labels);
    r.refusals[reason] = (r.refusals[reason] ?? 0) + v.value;
  }
  return [...rows.values()].filter((r) => r.listener !== '').sort((a, b) => a.listener.localeCompare(b.listener));
}

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
  handler: async (req, ctx): Promise<LimitsChangeView> => {
    const l = limitsOrFail(ctx);
    const actor = req.headers['x-mailfleet-actor'];
    const source = `admin-api${typeof actor === 'string' && actor ? ` (${actor.slice(0, 100)})` : ''}`;
    const asked = requests(req.body);
    refuseUnknownListeners(asked, ctx);
    await refuseUnknownUsers(asked, ctx);
    const changes = l.table.apply(asked, source);
    return { hostname: ctx.config.hostname, changes };
  },
};

function refuseUnknownListeners(asked: readonly LimitChangeRequest[], ctx: DaemonContext): void {
  const known = ctx.config.listeners.map((l) => l.name);
  for (const r of asked) {
    if (!r.scope.startsWith('listener:')) continue;
    const name = r.scope.slice('listener:'.length);
    if (!known.includes(name))
      throw new MailfleetError('BAD_REQUEST', `unknown listener ${name} (known: ${known.join(', ')})`, {
        status: 400,
        details: { scope: r.scope },
      });
  }
}

/**
 * An override for a user the directory does not know would sit there unused (and hide a typo): refused
 * with 400 naming the address. Removing one ("default") is always allowed, so stale ones can be cleaned.
 */
async function refuseUnknownUsers(asked: readonly LimitChangeRequest[], ctx: DaemonContext): Promise<void> {
  for (const r of asked) {
    if (r.value === null || r.value === 'default') continue;
    let scope;
    try {
      scope = parseScope(r.scope);
    } catch {
      continue; // the table reports a bad scope with its own message
    }
    if (scope.level !== 'user') continue;
    const found = await ctx.directory.resolveRecipient(scope.user);
    if (!found.some((u) => u.address.toLowerCase() === scope.user.toLowerCase()))
      throw new MailfleetError('BAD_REQUEST', `limit scope "${r.scope}": unknown user ${scope.user} (the directory has no such mailbox)`, {
        status: 400,
        details: { scope: r.scope },
      });
  }
}
