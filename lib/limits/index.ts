export * from './types.js';
export { LocalAdmission, type LimitLookup } from './local.js';
export { planLimit, refusalText, scopeDomain, scopeField, scopeLabel } from './resolve.js';
export {
  LimitTable,
  type LimitChange,
  type LimitChangeRequest,
  type EffectiveLimitRow,
  type LimitTableProps,
} from './table.js';
export {
  parseScope,
  formatScope,
  parseLimitValue,
  DAEMON_FIELDS,
  RATE_NAMES,
  MAX_LIMIT_VALUE,
  type LimitScope,
  type RateName,
} from './scope.js';
export { limitsStatePath, readLimitsState, LIMITS_STATE_FILE } from './state-file.js';
export { RedisAdmission, type RedisAdmissionProps } from './redis.js';
export {
  LocalRateLimiter,
  RedisRateLimiter,
  RATE_WINDOW_SECONDS,
  rateText,
  type IRateLimiter,
  type RateCheck,
  type RateRefusal,
  type RateResult,
} from './rates.js';
export {
  createAdmission,
  createDaemonLimits,
  bindDaemonLimits,
  limitsOf,
  registerLimitMetrics,
  type DaemonLimits,
  type CreateAdmissionOptions,
} from './daemon.js';
