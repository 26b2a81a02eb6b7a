export * from './types.js';
export { LocalAdmission, type LimitLookup } from './local.js';
export { planLimit, scopeDomain, scopeField, scopeLabel } from './resolve.js';
