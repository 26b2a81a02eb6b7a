export * from './events.js';
export * from './flags.js';
export { FileLock, withLock, type FileLockOptions } from './lock.js';
export * from './mailbox.js';
export * from './mime.js';
export * from './mutf7.js';
export * from './names.js';
export * from './store.js';
export * from './redis-events.js';
