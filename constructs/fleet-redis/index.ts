export * from './fleet-redis.js';
