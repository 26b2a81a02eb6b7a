export * from './runtime.js';
export * from './process.js';
export * from './state.js';
export * from './edge.js';
