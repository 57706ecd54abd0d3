// A leased NIC back home: when the namespace it was moved into dies, the
// kernel moves a physical device (one with no rtnl_link_ops, which is not
// deleted) to the initial namespace, down and with its addresses flushed,
// but with the name, MTU and MAC the lessee gave it. Whoever holds the
// lease lock there next (mkphys, netgrant-reap, the resident reaper's
// sweep) finds it by its device (entry.ts) and puts back what the host had
// set, then removes the entry: the NIC is free again.
import { dumpLinks, getLink, macText, parseMac, setLink, type LinkInfo, type Netlink } from '@netgrant/core';
import { existsSync, readdirSync } from 'node:fs';
import { withLeaseLockOrSkip } from '../lock.js';
import { PHYS_DIR, checkPhysDir, physEntries, removePhysEntry, type PhysEntry } from './entry.js';

/** The link of nl's namespace that belongs to device bus/dev, if it is here. */
export function linkOfDevice(links: LinkInfo[], bus: string, dev: string): LinkInfo | undefined {
  return links.find((l) => l.parentDev?.bus === bus && l.parentDev.name === dev);
}

/**
 * Put back what the host had set on a returned NIC: name (unless another
 * link has taken it meanwhile: then it keeps the one it came back with, and
 * warn says so), MTU, MAC, then up if it was.
 */
function restoreLink(nl: Netlink, link: LinkInfo, e: PhysEntry, warn: (m: string) => void): void {
  setLink(nl, link.index, { up: false });
  if (link.name !== e.name) {
    const taken = getLink(nl, e.name);
    if (taken) warn(`${link.name} (${e.bus} ${e.dev}) came back, but ${e.name} is taken: left as ${link.name}`);
    else setLink(nl, link.index, { name: e.name });
  }
  if (link.mtu !== e.mtu) setLink(nl, link.index, { mtu: e.mtu });
  if (macText(link.mac) !== e.mac) setLink(nl, link.index, { mac: parseMac(e.mac)! });
  if (e.up) setLink(nl, link.index, { up: true });
}

/** Restore every leased NIC that is back in nl's namespace and end its lease. Under the lease lock. Returns the entries restored. */
export function restoreReturned(nl: Netlink, warn: (m: string) => void = () => undefined): PhysEntry[] {
  checkPhysDir();
  const entries = physEntries();
  if (entries.length === 0) return [];
  const links = dumpLinks(nl);
  const done: PhysEntry[] = [];
  for (const e of entries) {
    const link = linkOfDevice(links, e.bus, e.dev);
    if (!link) continue; // still leased (or back in another namespace: the initial one restores it)
    restoreLink(nl, link, e, warn);
    removePhysEntry(e);
    done.push(e);
  }
  return done;
}

/**
 * restoreReturned for a reaper: nothing is done (not even the lock taken)
 * while no NIC is leased; with lockWaitMs 0 it gives up at once, returning
 * 0, if another holds the lock. Returns how many were restored.
 */
export function reapPhys(nl: Netlink, lockWaitMs: number, warn?: (m: string) => void): number {
  if (!existsSync(PHYS_DIR) || readdirSync(PHYS_DIR).length === 0) return 0;
  return withLeaseLockOrSkip(lockWaitMs, () => restoreReturned(nl, warn).length) ?? 0;
}
