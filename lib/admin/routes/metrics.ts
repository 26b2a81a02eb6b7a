import { TextBody, type AdminRoute } from '../types.js';

export const metricsRoute: AdminRoute = {
  method: 'GET',
  path: '/metrics',
  handler: async (_req, ctx) => new TextBody(await ctx.metrics.registry.metrics(), ctx.metrics.registry.contentType),
};
