// The sweep of unused sub-interfaces on its own (netgrant-reap, the
// resident reaper): under the lease lock, with the registry reconciled with
// the kernel first, as a creator's own sweep is.
import { dumpLinks, type Netlink } from '@netgrant/core';
import { withLeaseLockOrSkip } from '../lock.js';
import { checkRegistryDir, homeNetnsIno, reconcile } from '../registry.js';
import { VLAN_RECORD_PREFIX, isNetgrantVlan, sweepVlans } from './subif.js';

/**
 * Delete the unused netgrant sub-interfaces of nl's namespace (this
 * thread's): nothing is done (not even the lock taken) if there are none;
 * with lockWaitMs 0 it gives up at once, returning 0, if another holds the
 * lock (the next round will do). Returns how many went.
 */
export function reapVlans(nl: Netlink, lockWaitMs: number): number {
  // The common case, no sub-interface at all, opens nothing (a resident reaper does this every sweep).
  const vlans = dumpLinks(nl).filter((l) => l.kind === 'vlan' && l.alias?.startsWith(VLAN_RECORD_PREFIX));
  if (vlans.length === 0) return 0;
  const homeIno = homeNetnsIno();
  if (!vlans.some((l) => isNetgrantVlan(l, homeIno))) return 0;
  return withLeaseLockOrSkip(lockWaitMs, () => {
    checkRegistryDir();
    return sweepVlans(nl, homeIno, reconcile(nl, homeIno).live);
  }) ?? 0;
}
