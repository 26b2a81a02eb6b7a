import type { AdminRoute } from '../types.js';

export const healthRoute: AdminRoute = {
  method: 'GET',
  path: '/healthz',
  handler: (_req, ctx) => ({ status: 'ok', hostname: ctx.config.hostname, connections: ctx.connections.size }),
};
