export * from './types.js';
export { domainQuota, fits, userQuota, type ResolvedLimit } from './resolve.js';
export { quotaOf, QuotaService, type QuotaSubject, type RecalcResult } from './service.js';
export { QUOTAS_STATE_FILE, quotasStatePath, readQuotasState, writeQuotasState, type QuotasState } from './state-file.js';
export { warningMessage } from './warning.js';
