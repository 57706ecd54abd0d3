// The launcher: a fresh network namespace holding one ipvlan or macvlan
// interface with an address from each configured subnet, routes and lo up;
// the calling thread (main thread) ends inside it. Used by mkipvlan and
// mkmacvlan. Nothing is ever created in the host's namespace: the link is
// created directly into the new one (IFLA_NET_NS_FD), so if anything fails
// the process exits and the namespace and the link go with it.
//
// What is in use is decided under the lease lock (lock.ts: root-only, so no
// user can hold it) from the launched-namespace registry (registry.ts),
// reconciled with the kernel at every launch: never from what a user can
// write (records in a namespace a user owns) or hide (a namespace no process
// runs in). The new launch's entry is written before its addresses exist.
//
// With -N (target) the link goes into the client's own namespace instead,
// is configured there from a socket of that namespace, and the process
// stays home: that namespace outlives this process, so a failure deletes the
// link (and its entry). Its entry is a client entry (registry.ts): live by
// the namespace's id alone, since the client is root in there.
//
// With -V (vlan) the link's parent is the 802.1Q sub-interface of that VID
// on the configured parent, found or made under the lock (vlan/subif.ts);
// every launch deletes the sub-interfaces no launch uses any more.
import { InputError, SysError, DeniedError, unshareNet, currentNetns, close, lockExclusive, Netlink, createLink, getLink, setLink, deleteLink, dumpLinks, type LinkKind, type LinkInfo, addAddress, dumpAddresses, IFA_F_NODAD, addRoute, parseIp, macText, AF_INET6 } from '@netgrant/core';
import { fstatSync, lstatSync } from 'node:fs';
import { ipToBig, bigToIp, contains, type Cidr } from './cidr.js';
import { candidates } from './alloc.js';
import { forEachNamespace } from './scan.js';
import type { LaunchConfig } from './conf.js';
import type { LauncherCap } from './privileges.js';
import { LEASE_LOCK, openLeaseLock } from '../lock.js';
import { parseRecord } from '../record.js';
import { assignNsid, checkRegistryDir, entryRecord, homeNetnsIno, markGone, reconcile, removeEntry, writeEntry, type LaunchEntry } from '../registry.js';
import { netlinkIn } from './target.js';
import { addAssigned, checkAsked, type Asked } from './asked.js';
import { checkVidAllowed } from '../vlan/vid.js';
import { parentFamily, sweepVlans, undoSubInterface, vlanSubInterface, type SubInterface } from '../vlan/subif.js';

export interface LaunchRequest extends Asked {
  /** The launcher's name (the record's and the registry's "by"). */
  by: string;
  kind: 'ipvlan' | 'macvlan';
  mode: string;
  ifname: string;
  config: LaunchConfig;
  /** The uid the namespace is for (quota and the interface's record). */
  uid: number;
  /** How long to wait for the lease lock. */
  lockWaitMs: number;
  /** Each step that needs a capability runs through this (capability-aware mode). */
  withCap?: <T>(cap: LauncherCap, fn: () => T) => T;
  /** Called after the last use of a capability. */
  done?: (cap: 'sys_admin') => void;
  /** The client's namespace (-N, checked), instead of a new one. */
  target?: number;
  /** A CNI attachment's key (cniKey): netgrant-cni's rootful kinds, or a service's --cni; in the registry entry (a record in the client's namespace is the client's to rewrite), one per uid. */
  cni?: string;
  /** -V: the VID, and the VIDs the configuration allows. */
  vlan?: { vid: number; allowed: ReadonlySet<number> };
}

export interface Launched {
  ifname: string;
  parent: string;
  /** addr/prefix, one per subnet. */
  addresses: string[];
  gateways: string[];
  /** The interface's MAC. */
  mac?: Buffer;
}

interface Plan {
  cidr: Cidr;
  gateway: string | undefined;
  excluded: Set<bigint>;
}

const addrBig = (a: string) => ipToBig(parseIp(a)!.bytes);

/**
 * A capability-aware launcher (not root) must find the lease lock made by
 * root: one it created would be its user's (and so theirs to hold).
 */
function leaseLockMadeByRoot(): void {
  if (process.geteuid?.() === 0) return;
  let uid: number;
  try {
    uid = lstatSync(LEASE_LOCK).uid;
  } catch (e) {
    throw new SysError(`open ${LEASE_LOCK}`, Math.abs((e as NodeJS.ErrnoException).errno ?? 2), 'not root: the lease lock and registry must be made by root first (a root launch, or tmpfiles.d)');
  }
  if (uid !== 0) throw new InputError(`${LEASE_LOCK}: owned by uid ${uid}, not root`);
}

/** Run fn holding the lease lock (root's: a capability-aware launcher never makes it), waiting at most lockWaitMs. */
export function underLeaseLock<T>(lockWaitMs: number, withCap: <U>(cap: LauncherCap, fn: () => U) => U, fn: () => T): T {
  withCap('dac_override', leaseLockMadeByRoot);
  const lock = withCap('dac_override', () => openLeaseLock());
  try {
    lockExclusive(lock, lockWaitMs, `lock ${LEASE_LOCK}`);
    return fn();
  } finally {
    close(lock); // releases the lock: what the launch holds is in place
  }
}

/**
 * Launches the registry has no entry for (it was removed by hand): any
 * namespace /proc shows, owned by our own user namespace, holding an
 * interface whose record names this launcher namespace. Each gets an id
 * and an entry.
 */
function adopt(host: Netlink, homeIno: string, live: LaunchEntry[]): void {
  const known = new Set(live.map((e) => e.nsid));
  // A live entry's namespace is not entered again: its inode is its own while it lives.
  const skip = new Set(live.flatMap((e) => (e.ino ? [e.ino] : [])));
  forEachNamespace((nl, fd) => {
    const links = dumpLinks(nl);
    for (const l of links) {
      const r = parseRecord(l.alias);
      if (!r || r.kind !== 'lease' || !r.parent?.startsWith(`${homeIno}.`)) continue;
      const nsid = assignNsid(host, fd);
      if (known.has(nsid)) return;
      // Its addresses as the launch gave them (not the kernel's IPv6 link-local one).
      const addresses = dumpAddresses(nl).filter((a) => a.index === l.index && !/^fe[89ab][0-9a-f]:/i.test(a.address)).map((a) => `${a.address}/${a.prefix}`);
      const e: LaunchEntry = { by: r.by, uid: r.uid, parent: r.parent, nsid, ino: String(fstatSync(fd).ino), ...(r.mac ? { mac: r.mac } : {}), addresses };
      if (entryRecord(e) !== l.alias) continue; // not in the form we write
      writeEntry(e);
      live.push(e);
      known.add(nsid);
      return;
    }
  }, { trustedOnly: true, skip });
}

export function launch(req: LaunchRequest): Launched {
  const withCap = req.withCap ?? (<T>(_c: string, fn: () => T) => fn());
  const host = withCap('net_admin', () => Netlink.open());
  try {
    const links = dumpLinks(host);
    const addrs = dumpAddresses(host);
    // Each subnet's parent: the host interface holding an address in it (or the one named).
    let parentIndex: number | undefined;
    const plans: Plan[] = [];
    for (const s of req.config.subnets) {
      const inSubnet = addrs.filter((a) => contains(s.cidr, a.address));
      let index: number;
      if (s.parent !== undefined) {
        const l = links.find((x) => x.name === s.parent);
        if (!l) throw new InputError(`parent ${s.parent} for ${s.cidr.text}: no such interface`);
        index = l.index;
      } else {
        if (inSubnet.length === 0) throw new InputError(`${s.cidr.text}: no host interface has an address in it (name one with "parent")`);
        index = inSubnet[0]!.index;
      }
      if (parentIndex !== undefined && parentIndex !== index) throw new InputError(`${s.cidr.text}: on another parent than the subnets before it (one launch, one parent)`);
      parentIndex = index;
      // On a VLAN the parent's own addresses are another segment's: only the configured gateway.
      const gateway = s.gateway ?? (req.vlan ? undefined : inSubnet.find((a) => a.index === index)?.address);
      const excluded = new Set(inSubnet.map((a) => addrBig(a.address)));
      if (gateway) excluded.add(addrBig(gateway));
      plans.push({ cidr: s.cidr, gateway, excluded });
    }
    const parent = links.find((l) => l.index === parentIndex)!;
    checkAsked(req, links, parent, plans.map((p) => p.cidr));
    if (req.vlan) checkVidAllowed(req.vlan.vid, req.vlan.allowed, parent.name);
    if ((req.mode === 'l2' || req.kind === 'macvlan') && !req.assigned) {
      const missing = plans.find((p) => !p.gateway);
      if (missing) throw new InputError(`${missing.cidr.text}: no gateway (${req.vlan ? `on VLAN ${req.vlan.vid} set "gateway"` : `no host address on ${parent.name} in it; set "gateway"`})`);
    }

    const homeIno = homeNetnsIno();
    return underLeaseLock(req.lockWaitMs, withCap, () => {
      // The lower the link goes on: the parent, or its sub-interface for -V.
      let sub: SubInterface | undefined;
      try {
        return launchLocked(req, withCap, host, plans, parent, homeIno, (live) => {
          // sys_admin too: the sub-interface is made in a scratch namespace (scratch.ts).
          if (req.vlan) sub = withCap('sys_admin', () => withCap('net_admin', () => vlanSubInterface(host, homeIno, parent, req.vlan!.vid)));
          withCap('net_admin', () => sweepVlans(host, homeIno, live, sub?.link.index));
          return sub?.link ?? parent;
        });
      } catch (e) {
        withCap('net_admin', () => undoSubInterface(host, sub));
        throw e;
      }
    });
  } finally {
    host.close();
  }
}

function launchLocked(
  req: LaunchRequest,
  withCap: <T>(cap: LauncherCap, fn: () => T) => T,
  host: Netlink,
  plans: Plan[],
  physical: { index: number; name: string },
  homeIno: string,
  lowerFor: (live: LaunchEntry[]) => { index: number; name: string },
): Launched {
  {
    // What is in use: the registry's live entries, checked with the kernel.
    const live = withCap('dac_override', () => {
      checkRegistryDir();
      return withCap('net_admin', () => reconcile(host, homeIno).live);
    });
    withCap('dac_override', () => withCap('sys_admin', () => withCap('net_admin', () => adopt(host, homeIno, live))));
    // (A tombstone's key is free: its namespace is gone; its addresses stay held until it expires.)
    if (req.cni !== undefined && live.some((e) => e.cni === req.cni && e.uid === req.uid && e.gone === undefined)) throw new SysError(`attachment ${req.cni}`, 17 /* EEXIST */, 'it has an interface already');
    // The limit counts launches on the parent and on every VLAN of it.
    const family = parentFamily(dumpLinks(host), homeIno, physical.index);
    const mine = live.filter((e) => family.has(e.parent) && e.uid === req.uid).length;
    if (req.config.limit !== undefined && mine >= req.config.limit) throw new DeniedError(`uid ${req.uid} already has ${mine} launched namespace${mine === 1 ? '' : 's'}, the limit is ${req.config.limit}`);
    for (const e of live) for (const a of e.addresses) for (const p of plans) if (contains(p.cidr, a.split('/')[0]!)) p.excluded.add(addrBig(a.split('/')[0]!));
    const parent = lowerFor(live);
    const parentRef = `${homeIno}.${parent.index}`;

    // The new namespace (on this, the main thread) or the client's; the link goes straight into it.
    const { target } = req;
    const home = currentNetns();
    if (target === undefined) withCap('sys_admin', () => unshareNet());
    const ns = target ?? currentNetns();
    const ino = String(fstatSync(ns).ino);
    let nsid: number;
    let nl: Netlink;
    try {
      // The namespace's id in the launcher's: how the registry tells it lives.
      nsid = withCap('net_admin', () => assignNsid(host, ns));
      if (target !== undefined) sameClient(live, nsid, ino);
      // A socket of that namespace (the thread stays in a new one, is back home from the client's), before
      // the link: nothing that can fail stands between the link in the client's namespace and its undo.
      nl = target === undefined ? withCap('net_admin', () => Netlink.open()) : netlinkIn(ns, home, withCap);
      const kind: LinkKind = req.kind === 'ipvlan' ? { kind: 'ipvlan', mode: req.mode as 'l2' | 'l3' | 'l3s' } : { kind: 'macvlan', mode: req.mode as 'bridge' };
      try {
        withCap('net_admin', () => createLink(host, kind, { name: req.ifname, parent: parent.index, netnsFd: ns, ...(req.mtu !== undefined ? { mtu: req.mtu } : {}) }));
      } catch (e) {
        // The kernel may have made it and the answer been lost: ours if it is of our kind on our parent (not the client's own, EEXIST).
        if (target !== undefined && !(e instanceof SysError && e.code === 'EEXIST')) {
          try {
            const made = getLink(nl, req.ifname);
            if (made && made.kind === req.kind && made.parent === parent.index) undoClient(nl, withCap, req.ifname, made, undefined);
          } catch {
            /* the create's error is the one to report */
          }
        }
        nl.close();
        throw e;
      }
    } finally {
      if (target === undefined) close(ns);
      close(home);
    }
    req.done?.('sys_admin');
    let entry: LaunchEntry | undefined;
    let link: LinkInfo | null = null;
    try {
      return withCap('net_admin', () => {
        if (target === undefined) setLink(nl, getLink(nl, 'lo')!.index, { up: true });
        link = getLink(nl, req.ifname);
        if (!link) throw new SysError(`find ${req.ifname} in the ${target === undefined ? 'new' : 'client\'s'} namespace`, 19);
        // A macvlan's MAC is random per launch (passthru's is its parent's, ipvlan's too).
        const mac = req.kind === 'macvlan' && req.mode !== 'passthru' ? macText(link.mac) : undefined;
        entry = { by: req.by, uid: req.uid, parent: parentRef, nsid, ino, ...(mac ? { mac } : {}), addresses: [], ...(target !== undefined ? { client: true } : {}), ...(req.cni !== undefined ? { cni: req.cni } : {}) };
        const e = entry;
        // The entry first: from here on the launch counts, before it has anything.
        withCap('dac_override', () => writeEntry(e));
        // The record: ours, whose, for which parent (registry.ts checks it to tell a namespace of ours lives).
        setLink(nl, link.index, { up: true, alias: entryRecord(e) });
        const { assigned } = req;
        if (assigned) {
          const inUse = (ip: string) => plans.some((p) => contains(p.cidr, ip) && p.excluded.has(addrBig(ip)));
          addAssigned(nl, link.index, assigned, inUse, (addresses) => withCap('dac_override', () => writeEntry({ ...e, addresses })));
          return { ifname: req.ifname, parent: parent.name, addresses: assigned.addresses, gateways: assigned.gateways, mac: link.mac };
        }
        const addresses: string[] = [];
        const routed = new Set<number>();
        for (const p of plans) {
          let got: string | undefined;
          for (const v of candidates(p.cidr, p.excluded)) {
            const a = bigToIp(v, p.cidr.bits);
            // Recorded before it is added: the entry always covers what the interface has.
            withCap('dac_override', () => writeEntry({ ...e, addresses: [...addresses, `${a}/${p.cidr.prefix}`] }));
            try {
              addAddress(nl, link!.index, a, p.cidr.prefix, p.cidr.family === AF_INET6 ? IFA_F_NODAD : 0);
              got = a;
              break;
            } catch (e) {
              // ipvlan: the kernel refuses an address another slave of the parent holds.
              if (e instanceof SysError && e.code === 'EADDRINUSE') continue;
              throw e;
            }
          }
          if (!got) throw new SysError(`allocate an address in ${p.cidr.text}`, 28 /* ENOSPC */, 'no free address in the subnet');
          addresses.push(`${got}/${p.cidr.prefix}`);
          if (routed.has(p.cidr.family)) continue;
          routed.add(p.cidr.family);
          if (req.kind === 'ipvlan' && req.mode !== 'l2') addRoute(nl, { family: p.cidr.family, oif: link!.index });
          else addRoute(nl, { gateway: p.gateway!, oif: link!.index });
        }
        return { ifname: req.ifname, parent: parent.name, addresses, gateways: plans.map((p) => p.gateway ?? ''), mac: link!.mac };
      });
    } catch (err) {
      // A new namespace goes with this process, and the link with it; the client's outlives it.
      if (target !== undefined) undoClient(nl, withCap, req.ifname, link, entry);
      throw err;
    } finally {
      nl.close();
    }
  }
}

/**
 * The same client twice: a live entry already has the target's id. If its
 * inode is the target's, it is the target's own lease (refused); else its
 * namespace is gone (its id now names the target) and it becomes a tombstone.
 */
function sameClient(live: LaunchEntry[], nsid: number, ino: string): void {
  for (const e of live) {
    if (!e.client || e.nsid !== nsid || e.gone !== undefined) continue;
    if (e.ino === ino) throw new DeniedError('-N: that namespace already has a launched interface (one per namespace)');
    markGone(e);
  }
}

/** A failed -N launch: its link deleted (the client's namespace outlives us), then its entry; a link we cannot delete keeps its entry. */
function undoClient(nl: Netlink, withCap: <T>(cap: LauncherCap, fn: () => T) => T, ifname: string, link: LinkInfo | null, entry: LaunchEntry | undefined): void {
  try {
    const l = link ?? getLink(nl, ifname);
    if (!l) return;
    withCap('net_admin', () => deleteLink(nl, l.index));
    if (entry) withCap('dac_override', () => removeEntry(entry!));
  } catch {
    /* the launch's own error is the one to report; what stays is counted (its entry) until the namespace goes */
  }
}
