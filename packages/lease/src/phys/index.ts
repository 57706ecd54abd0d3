export * from './entry.js';
export * from './restore.js';
export * from './lease.js';
