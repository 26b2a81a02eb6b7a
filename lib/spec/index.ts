export * from './schema.js';
export { loadSpec, parseSpec, SpecError, formatIssue, type LoadedSpec, type SpecIssue } from './load.js';
export { DEFAULT_LIMITS, DEFAULT_RATES, effectiveLimits, effectiveRates } from './defaults.js';
export type { EffectiveServiceLimits, EffectiveRates } from './defaults.js';
export { jsonSchema } from './json-schema.js';
export * from './ports.js';
