/**
 * The console's admin routes. The page and its script are public (they carry no data); the snapshot
 * and the limit form go through /v1/*, so the admin server's bearer-token check guards them.
 */
import { MailfleetError } from '../errors.js';
import type { AdminRequest, AdminRoute } from '../admin/types.js';
import { TextBody } from '../admin/types.js';
import type { DaemonContext } from '../daemon/context.js';
import { parseLimitRequest, setLimits, type LimitReport } from '../ops/limit.js';
import { GOVERNOR_CONSOLE_ROUTES } from './governor.js';
import { CONSOLE_EDGE_ROUTES } from './edge.js';
import { consolePage, consoleScript } from './page.js';
import { collectSnapshot, consoleFleet, selfAdminUrl, type ConsoleSnapshot } from './snapshot.js';

function fleetFor(req: AdminRequest, ctx: DaemonContext) {
  // The admin server checked this header already; the same token opens the other nodes.
  const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
  // Changes from the console are recorded as made by it (the page has no user of its own to name).
  return { ...consoleFleet(ctx, selfAdminUrl(ctx, req.headers.host), token), actor: 'mailfleet-console' };
}

export const consolePageRoute: AdminRoute = {
  method: 'GET',
  path: '/console',
  auth: false,
  handler: () => new TextBody(consolePage(), 'text/html; charset=utf-8'),
};

export const consoleScriptRoute: AdminRoute = {
  method: 'GET',
  path: '/console/app.js',
  auth: false,
  handler: () => new TextBody(consoleScript, 'text/javascript; charset=utf-8'),
};

export const consoleSnapshotRoute: AdminRoute = {
  method: 'GET',
  path: '/v1/console/snapshot',
  handler: (req, ctx): Promise<ConsoleSnapshot> => collectSnapshot(fleetFor(req, ctx)),
};

/** POST {scope, value}: `mailfleet limit set <scope> <value>` across the fleet; answers per target. */
export const consoleLimitRoute: AdminRoute = {
  method: 'POST',
  path: '/v1/console/limit',
  handler: async (req, ctx): Promise<{ reports: LimitReport[] }> => {
    const b = req.body as { scope?: unknown; value?: unknown } | undefined;
    if (!b || typeof b.scope !== 'string' || (typeof b.value !== 'string' && typeof b.value !== 'number'))
      throw new MailfleetError('BAD_REQUEST', 'expected {"scope": "...", "value": N or "default"}', {
        status: 400,
      });
    const request = parseLimitRequest(b.scope.trim(), String(b.value).trim());
    return { reports: await setLimits(fleetFor(req, ctx), [request]) };
  },
};

export const CONSOLE_ROUTES: readonly AdminRoute[] = [
  consolePageRoute,
  consoleScriptRoute,
  consoleSnapshotRoute,
  consoleLimitRoute,
  ...GOVERNOR_CONSOLE_ROUTES,
  ...CONSOLE_EDGE_ROUTES,
];
