export * from './socket.js';
export * from './link.js';
export * from './addr.js';
export * from './route.js';
export * from './ip.js';
export * from './tc.js';
export * from './mac.js';
export * from './neigh.js';
