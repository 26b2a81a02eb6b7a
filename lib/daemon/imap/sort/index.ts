export * from './items.js';
export * from './sort-order.js';
export * from './threads.js';
