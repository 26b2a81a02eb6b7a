export * from './audit-archive.js';
