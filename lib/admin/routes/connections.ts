import type { AdminRoute } from '../types.js';

/** Live sessions of this daemon; `?listener=`, `?user=`, `?ip=` filter. Read by `mailfleet top`. */
export const connectionsRoute: AdminRoute = {
  method: 'GET',
  path: '/v1/connections',
  handler: (req, ctx) => {
    const listener = req.query.get('listener');
    const user = req.query.get('user')?.toLowerCase();
    const ip = req.query.get('ip');
    const connections = ctx.connections
      .list()
      .filter((c) => (!listener || c.listener === listener) && (!user || c.user === user) && (!ip || c.remoteAddress === ip));
    return { hostname: ctx.config.hostname, total: connections.length, connections };
  },
};
