// The leases of one network namespace, read from the kernel alone: every
// link whose alias is a netgrant record. cull() deletes the stale ones
// (stale.ts) and returns the rest. The kernel's state is the only truth, so
// a reaper killed at any moment and restarted, or a creator that culls
// before counting, reconciles from it alone.
import { deleteLinkIfThere, dumpLinks, getLink, type LinkInfo, type Netlink } from '@netgrant/core';
import { parseRecord, type LeaseRecord } from './record.js';
import { staleContext, staleReason, type StaleContext } from './stale.js';

export interface Lease {
  link: LinkInfo;
  record: LeaseRecord;
}

/** The links that carry a record, with it. */
export function leasesOf(links: LinkInfo[]): Lease[] {
  const out: Lease[] = [];
  for (const link of links) {
    const record = parseRecord(link.alias);
    if (record) out.push({ link, record });
  }
  return out;
}

export type OnReap = (lease: Lease, reason: string) => void;

/**
 * Delete lease if it is stale: looked up again by index just before the
 * delete, and deleted only if it is still the same device (name and record)
 * and still stale, so a lease that changed in between is judged on what it
 * is now. Returns whether it was deleted (false also when already gone).
 */
export function reapIfStale(nl: Netlink, lease: Lease, onReap?: OnReap, ctx: StaleContext = staleContext()): boolean {
  if (staleReason(lease.link, lease.record, ctx) === null) return false;
  const now = getLink(nl, lease.link.index);
  if (!now || now.name !== lease.link.name || now.alias !== lease.link.alias) return false;
  // (The holders seen are still right: a node no process holds can never be opened again.)
  const reason = staleReason(now, lease.record, ctx);
  if (reason === null) return false;
  if (!deleteLinkIfThere(nl, now.index)) return false; // gone meanwhile
  onReap?.({ link: now, record: lease.record }, reason);
  return true;
}

/** Delete every stale lease in nl's namespace; the live leases that remain. */
export function cull(nl: Netlink, onReap?: OnReap): Lease[] {
  const live: Lease[] = [];
  const ctx = staleContext();
  for (const lease of leasesOf(dumpLinks(nl))) {
    if (!reapIfStale(nl, lease, onReap, ctx)) live.push(lease);
  }
  return live;
}
