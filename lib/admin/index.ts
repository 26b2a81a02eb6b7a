export { startAdminServer, resolveAdminToken, type AdminServer, type AdminServerProps } from './server.js';
export { ADMIN_ROUTES } from './routes/index.js';
export { TextBody, type AdminRequest, type AdminRoute } from './types.js';
