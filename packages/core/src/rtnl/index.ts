export * from './socket.js';
export * from './link.js';
export * from './addr.js';
export * from './route.js';
export * from './ip.js';
