export * from './dkim.js';
export * from './headers.js';
export * from './health.js';
export * from './message-filter.js';
export * from './processes.js';
export * from './rspamd-client.js';
export * from './rspamd-config.js';
export * from './verdict.js';
