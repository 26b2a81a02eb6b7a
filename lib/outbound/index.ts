export * from './queue.js';
export * from './bounce.js';
