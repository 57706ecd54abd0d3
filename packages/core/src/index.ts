// @netgrant/core: typed wrappers over koffi and the chain runtime.
// exec.js and startfds.js first: they record stdio's blocking state and the
// inherited fds before anything else runs.
export * from './exec.js';
export * from './runtime/startfds.js';
export * from './errors.js';
export * from './fd.js';
export * from './runtime/options.js';
export * from './runtime/values.js';
export * from './runtime/output.js';
export * from './runtime/env.js';
export * from './runtime/program.js';
export * from './socket.js';
export * from './udp.js';
export * from './udp6.js';
export * from './message.js';
export * from './runtime/fdargs.js';
export * from './runtime/processfds.js';
export * from './users.js';
export * from './pair.js';
export * from './caps.js';
export * from './ns.js';
export * from './tun.js';
export * from './ifname.js';
export * from './runtime/mapenv.js';
export * from './runtime/mapfds.js';
export * from './poll.js';
export * from './rtnl/index.js';
export * from './config.js';
export * from './sysctl.js';
export * from './mount.js';
export * from './unsecure-env.js';
export * from './bpf/asm.js';
export * from './bpf/syscall.js';
