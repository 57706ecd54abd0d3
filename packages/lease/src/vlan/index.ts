export * from './vid.js';
export * from './subif.js';
export * from './reap.js';
