// The sweep of unused sub-interfaces on its own (netgrant-reap, the
// resident reaper): under the lease lock, with the registry reconciled with
// the kernel first, as a creator's own sweep is.
import { SysError, close, currentNetns, dumpLinks, lockExclusive, type Netlink } from '@netgrant/core';
import { fstatSync } from 'node:fs';
import { LEASE_LOCK, openLeaseLock } from '../lock.js';
import { checkRegistryDir, reconcile } from '../registry.js';
import { isNetgrantVlan, sweepVlans } from './subif.js';

/** The inode of this thread's network namespace (the refs' "<ino>"). */
export function homeNetnsIno(): string {
  const home = currentNetns();
  try {
    return String(fstatSync(home).ino);
  } finally {
    close(home);
  }
}

/**
 * Delete the unused netgrant sub-interfaces of nl's namespace (this
 * thread's): nothing is done (not even the lock taken) if there are none;
 * with lockWaitMs 0 it gives up at once, returning 0, if another holds the
 * lock (the next round will do). Returns how many went.
 */
export function reapVlans(nl: Netlink, lockWaitMs: number): number {
  const homeIno = homeNetnsIno();
  if (!dumpLinks(nl).some((l) => isNetgrantVlan(l, homeIno))) return 0;
  const lock = openLeaseLock();
  try {
    try {
      lockExclusive(lock, lockWaitMs, `lock ${LEASE_LOCK}`);
    } catch (e) {
      if (lockWaitMs === 0 && e instanceof SysError && e.code === 'ETIMEDOUT') return 0;
      throw e;
    }
    checkRegistryDir();
    return sweepVlans(nl, homeIno, reconcile(nl, homeIno).live);
  } finally {
    close(lock);
  }
}
