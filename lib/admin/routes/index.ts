/** The admin route table. To add a route: a file under lib/admin/routes/ and one line here. */
import type { AdminRoute } from '../types.js';
import { connectionsRoute } from './connections.js';
import { governorSampleRoute } from './governor-sample.js';
import { healthRoute } from './health.js';
import { getLimitsRoute, putLimitsRoute } from './limits.js';
import { metricsRoute } from './metrics.js';
import { QUOTA_ROUTES } from './quota.js';
import { CONSOLE_ROUTES } from '../../console/routes.js';

export const ADMIN_ROUTES: readonly AdminRoute[] = [
  healthRoute,
  metricsRoute,
  connectionsRoute,
  getLimitsRoute,
  putLimitsRoute,
  governorSampleRoute,
  ...QUOTA_ROUTES,
  ...CONSOLE_ROUTES,
];
