// @netgrant/lease: what every creator shares and the kernel does not
// define: address pools, the launchers, lease records and the reaper's
// rules, the quota lock, per-lease filters, VLAN sub-interfaces, leased NICs.
export * from './launch/cidr.js';
export * from './launch/conf.js';
export * from './launch/alloc.js';
export * from './launch/launch.js';
export * from './launch/privileges.js';
export * from './launch/program.js';
export * from './launch/kinds.js';
export * from './launch/attachments.js';
export * from './launch/asked.js';
export * from './tap-attachment.js';
export * from './launch/scan.js';
export * from './launch/target.js';
export * from './record.js';
export * from './trust.js';
export * from './lock.js';
export * from './stale.js';
export * from './leases.js';
export * from './reaper.js';
export * from './pin/index.js';
export * from './registry.js';
export * from './cni.js';
export * from './launch/cni.js';
export * from './tables.js';
export * from './pool.js';
export * from './routed.js';
export * from './mac.js';
export * from './queues.js';
export * from './holders.js';
export * from './veth/conf.js';
export * from './veth/nat.js';
export * from './veth/launch.js';
export * from './veth/cni.js';
export * from './vlan/index.js';
export * from './phys/index.js';
export * from './scratch.js';
