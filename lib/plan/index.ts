export * from './types.js';
export { buildPlan, listenerName, slug, SERVICE_OF, TLS_OF, NLB_MAX_LISTENERS } from './build.js';
export { daemonConfig, type DaemonConfigOptions } from './daemon-config.js';
export { formatPlan, table } from './format.js';
export { proxyNumbers, frontendMaxconn, BUSY_HEADROOM_MIN, GLOBAL_RESERVE, type ProxyNumbers } from './proxy.js';
