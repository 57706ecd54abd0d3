// The 802.1Q sub-interfaces netgrant makes for -V: one per (parent, VID) in
// the creator's own (the server's) namespace, shared by every lease on that
// VID, made and deleted only under the lease lock.
//
// - Name: PARENT.VID when it fits IFNAMSIZ (15 bytes), else ngv<ifindex>.VID
//   (the parent's index is unique in the namespace). It is found again by
//   what the kernel says (kind vlan, lower, VID), never by name: the kernel
//   allows one VLAN device per VID on a lower.
// - Record: its alias, `netgrant1 vlan parent=<netns inode>.<ifindex> vid=N`,
//   which only root can write in the server's namespace. parseRecord does not
//   take it for a lease, so no reaper or quota counts it. A VLAN device
//   without it (the administrator's own) is used as it is and never deleted.
// - Users, counted from the kernel's state: live launched namespaces whose
//   registry entry (reconciled with the kernel) names it as parent, and links
//   of its own namespace on it (a host-side macvtap, anything of the
//   administrator's). A sub-interface with none is deleted by the next
//   creator or reaper holding the lease lock, so a crash at any step leaves
//   at most an unused one until then, but between its creation and its
//   record (the kernel takes no alias in the create): one killed there has
//   no record and stays. A failure there (the create's answer lost, a
//   request after it failing) deletes it (test/faults-vlan.vm.test.ts).
import { InputError, SysError, createLink, deleteLink, dumpLinks, getLink, setLink, type LinkInfo, type Netlink } from '@netgrant/core';
import type { LaunchEntry } from '../registry.js';

const IFNAMSIZ_MAX = 15;

export const VLAN_RECORD_PREFIX = 'netgrant1 vlan ';

/** The record a netgrant sub-interface carries. */
export function vlanRecord(homeIno: string, parentIndex: number, vid: number): string {
  return `${VLAN_RECORD_PREFIX}parent=${homeIno}.${parentIndex} vid=${vid}`;
}

/** The name netgrant gives VLAN vid of parent (index parentIndex). */
export function vlanName(parent: string, parentIndex: number, vid: number): string {
  const plain = `${parent}.${vid}`;
  if (Buffer.byteLength(plain) <= IFNAMSIZ_MAX) return plain;
  const short = `ngv${parentIndex}.${vid}`;
  if (short.length > IFNAMSIZ_MAX) throw new InputError(`-V ${vid}: no name fits for a VLAN of ${parent} (index ${parentIndex})`);
  return short;
}

/** The VLAN device of VID vid on lower parentIndex in links, if any (the kernel allows one). */
function vlanOn(links: LinkInfo[], parentIndex: number, vid: number): LinkInfo | undefined {
  return links.find((l) => l.kind === 'vlan' && l.parent === parentIndex && l.parentNetnsid === undefined && l.vlanId === vid);
}

/** Whether link is a sub-interface netgrant made in namespace homeIno (its record matches what the kernel says of it). */
export function isNetgrantVlan(link: LinkInfo, homeIno: string): boolean {
  return link.kind === 'vlan' && link.parentNetnsid === undefined && link.parent !== undefined && link.vlanId !== undefined &&
    link.alias === vlanRecord(homeIno, link.parent, link.vlanId);
}

export interface SubInterface {
  link: LinkInfo;
  /** Made by this call (so the caller's failure deletes it). */
  made: boolean;
}

/**
 * VLAN vid of parent in nl's namespace (homeIno): the one there is, or a new
 * one carrying its record, up. Under the lease lock.
 */
export function vlanSubInterface(nl: Netlink, homeIno: string, parent: LinkInfo, vid: number): SubInterface {
  const found = vlanOn(dumpLinks(nl), parent.index, vid);
  if (found) {
    if (!found.up) setLink(nl, found.index, { up: true });
    return { link: found, made: false };
  }
  const name = vlanName(parent.name, parent.index, vid);
  let link: LinkInfo | null;
  try {
    createLink(nl, { kind: 'vlan', id: vid }, { name, parent: parent.index });
  } catch (e) {
    if (e instanceof SysError && e.code === 'EEXIST') throw new SysError(`create VLAN ${vid} of ${parent.name}`, 17, `${name} exists and is not VLAN ${vid} of ${parent.name}, or the VLAN is in another namespace`);
    if (e instanceof SysError && (e.code === 'EOPNOTSUPP' || e.code === 'ENOTSUP')) throw new SysError(`create VLAN ${vid} of ${parent.name}`, 95, 'the kernel has no 802.1Q support (module 8021q)');
    undoCreate(nl, parent.index, vid); // the kernel may have made it and its answer been lost
    throw e;
  }
  try {
    link = getLink(nl, name);
  } catch (e) {
    undoCreate(nl, parent.index, vid);
    throw e;
  }
  if (!link || link.kind !== 'vlan' || link.parent !== parent.index || link.vlanId !== vid) throw new SysError(`find the new VLAN ${name}`, 19 /* ENODEV */);
  try {
    const alias = vlanRecord(homeIno, parent.index, vid);
    setLink(nl, link.index, { alias, up: true });
    return { link: { ...link, alias, up: true }, made: true };
  } catch (e) {
    deleteQuietly(nl, link.index);
    throw e;
  }
}

/**
 * After a failure between the create and the record: the VLAN vid on
 * parentIndex the kernel may have made, deleted. There was none before the
 * create and no creator makes one but under the lock: it is this call's.
 * Without its record no sweep would ever delete it (the administrator's
 * own are used as they are).
 */
function undoCreate(nl: Netlink, parentIndex: number, vid: number): void {
  try {
    const made = vlanOn(dumpLinks(nl), parentIndex, vid);
    if (made) deleteLink(nl, made.index);
  } catch {
    // the first error is the one to report
  }
}

function deleteQuietly(nl: Netlink, index: number): void {
  try {
    deleteLink(nl, index);
  } catch {
    // gone already; else unused, and the next sweep deletes it
  }
}

/** Delete a sub-interface this creator made, on its failure (under the lock it was made under: no one else uses it). */
export function undoSubInterface(nl: Netlink, s: SubInterface | undefined): void {
  if (s?.made) deleteQuietly(nl, s.link.index);
}

/** The registry refs ("<ino>.<index>") of parent and every VLAN device on it: the launches a per-parent limit counts. */
export function parentFamily(links: LinkInfo[], homeIno: string, parentIndex: number): Set<string> {
  const refs = new Set([`${homeIno}.${parentIndex}`]);
  for (const l of links) if (l.kind === 'vlan' && l.parent === parentIndex && l.parentNetnsid === undefined) refs.add(`${homeIno}.${l.index}`);
  return refs;
}

/**
 * Delete every netgrant sub-interface of nl's namespace (homeIno) that has
 * no user: no live launch in live (the reconciled registry) names it, no
 * link of this namespace is on it. keep (an index) is spared: the caller is
 * about to use it. Under the lease lock. Returns how many went.
 */
export function sweepVlans(nl: Netlink, homeIno: string, live: readonly LaunchEntry[], keep?: number): number {
  const links = dumpLinks(nl);
  const used = new Set(live.map((e) => e.parent));
  let n = 0;
  for (const l of links) {
    if (l.index === keep || !isNetgrantVlan(l, homeIno) || used.has(`${homeIno}.${l.index}`)) continue;
    if (links.some((u) => u.parent === l.index && u.parentNetnsid === undefined && u.index !== l.index)) continue;
    try {
      deleteLink(nl, l.index);
      n++;
    } catch (e) {
      if (!(e instanceof SysError && e.code === 'ENODEV')) throw e;
    }
  }
  return n;
}
