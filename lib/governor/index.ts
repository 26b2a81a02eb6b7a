export * from './config.js';
export * from './core.js';
export * from './format.js';
export * from './loop.js';
export * from './signals.js';
export * from './store.js';
export * from './types.js';
