// Leasing a NIC (mkphys): under the lease lock, the returned NICs restored
// first (restore.ts); then the allowed host interface, checked (a physical
// device that is no one's: no entry, no master, nothing on it, no host
// address), gets its entry (what the host had set) and is moved whole into
// a new namespace (the calling thread ends inside it, lo and the NIC up) or
// the client's (-N, checked by the caller), renamed there. One user at a
// time: a NIC with an entry is refused until it is back and restored.
import { DeniedError, InputError, Netlink, SysError, close, currentNetns, dumpAddresses, dumpLinks, getLink, macText, setLink, unshareNet, withNetlink } from '@netgrant/core';
import { withLeaseLock } from '../lock.js';
import { netlinkIn } from '../launch/target.js';
import { checkPhysDir, physEntries, removePhysEntry, writePhysEntry, type PhysEntry } from './entry.js';
import { restoreReturned } from './restore.js';

export interface PhysRequest {
  by: string;
  uid: number;
  /** The host interface (allowed by the caller's configuration). */
  host: string;
  /** Its name in the namespace it goes to. */
  ifname: string;
  /** The client's namespace (-N, checked), else a new one. */
  target?: number;
  lockWaitMs: number;
  warn?: (m: string) => void;
}

const linkLocal6 = (a: string) => /^fe[89ab][0-9a-f]:/i.test(a);
const id = <T>(_c: string, fn: () => T) => fn();

/** The host interface, checked free to lease. */
function freeNic(nl: Netlink, name: string, entries: PhysEntry[]) {
  const link = getLink(nl, name);
  if (!link) {
    const held = entries.find((e) => e.name === name);
    if (held) throw new DeniedError(`-P ${name}: leased (to uid ${held.uid}) until its namespace ends`);
    throw new InputError(`-P ${name}: no such interface`);
  }
  if (!link.parentDev) throw new InputError(`-P ${name}: not a physical device (no bus device: it would die with the namespace, not come back)`);
  const links = dumpLinks(nl);
  if (link.master !== undefined && link.master !== 0) throw new InputError(`-P ${name}: enslaved to another interface (a bridge or bond port)`);
  const upper = links.find((u) => u.parent === link.index && u.parentNetnsid === undefined && u.index !== link.index);
  if (upper) throw new InputError(`-P ${name}: ${upper.name} is on it`);
  const addr = dumpAddresses(nl).find((a) => a.index === link.index && !linkLocal6(a.address));
  if (addr) throw new InputError(`-P ${name}: has a host address (${addr.address}): not a free interface`);
  return link;
}

/** Move the allowed NIC req.host as the request says; returns its name there. */
export function leasePhys(req: PhysRequest): { ifname: string } {
  return withNetlink((host) => withLeaseLock(req.lockWaitMs, () => {
    checkPhysDir();
    restoreReturned(host, req.warn);
    const entries = physEntries();
    const link = freeNic(host, req.host, entries);
    const { bus, name: dev } = link.parentDev!;
    const entry: PhysEntry = { by: req.by, uid: req.uid, bus, dev, name: link.name, mtu: link.mtu ?? 1500, mac: macText(link.mac) ?? '', up: link.up };
    if (!entry.mac) throw new InputError(`-P ${req.host}: not an Ethernet device`);
    const home = currentNetns();
    try {
      if (req.target !== undefined) {
        // The name must be free there: a rename that fails after the move would leave it the client's all the same.
        const nl = netlinkIn(req.target, home, id);
        try {
          if (getLink(nl, req.ifname)) throw new InputError(`-i ${req.ifname}: the client's namespace has one`);
        } finally {
          nl.close();
        }
      }
      // The entry before the move: from the move on, the NIC is leased.
      writePhysEntry(entry);
      let ns: number | undefined;
      try {
        if (req.target === undefined) {
          unshareNet();
          ns = currentNetns();
        }
        setLink(host, link.index, { netnsFd: req.target ?? ns!, name: req.ifname });
      } catch (e) {
        if (getLink(host, link.index)?.parentDev?.name === dev) removePhysEntry(entry); // not moved: not leased
        throw e;
      } finally {
        if (ns !== undefined) close(ns);
      }
      // A new namespace: configured from inside (a failure from here ends the process and the namespace: the NIC comes back).
      if (req.target === undefined) {
        withNetlink((nl) => {
          setLink(nl, getLink(nl, 'lo')!.index, { up: true });
          const moved = getLink(nl, req.ifname);
          if (!moved) throw new SysError(`find ${req.ifname} in the new namespace`, 19 /* ENODEV */);
          setLink(nl, moved.index, { up: true });
        });
      }
      return { ifname: req.ifname };
    } finally {
      close(home);
    }
  }));
}
