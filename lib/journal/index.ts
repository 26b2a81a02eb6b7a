export * from './types.js';
export * from './entry.js';
export * from './spool.js';
export * from './s3.js';
export * from './uploader.js';
export * from './daemon.js';
export * from './archive.js';
export * from './local-s3.js';
