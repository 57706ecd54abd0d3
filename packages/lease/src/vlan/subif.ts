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
//   creator or reaper holding the lease lock. It is made and recorded in a
//   scratch namespace and only then moved here (scratch.ts: the kernel
//   takes no alias in the create), so a crash at any step leaves at most an
//   unused recorded one until then, never one without its record; a failed
//   step leaves nothing (test/faults-vlan.vm.test.ts).
import { InputError, SysError, createLink, deleteLink, deleteLinkIfThere, dumpLinks, getLink, setLink, type LinkInfo, type Netlink } from '@netgrant/core';
import type { LaunchEntry } from '../registry.js';
import { viaScratchNetns } from '../scratch.js';

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
  const alias = vlanRecord(homeIno, parent.index, vid);
  // Made and recorded in a scratch namespace, then moved here: a kill at
  // any step leaves no VLAN without its record (scratch.ts).
  viaScratchNetns((scratch, snl, dest) => {
    try {
      createLink(nl, { kind: 'vlan', id: vid }, { name, parent: parent.index, netnsFd: scratch });
    } catch (e) {
      if (e instanceof SysError && (e.code === 'EOPNOTSUPP' || e.code === 'ENOTSUP')) throw new SysError(`create VLAN ${vid} of ${parent.name}`, 95, 'the kernel has no 802.1Q support (module 8021q)');
      // The kernel allows one VLAN of a VID per lower (another namespace's too: EEXIST).
      if (e instanceof SysError && e.code === 'EEXIST') throw new SysError(`create VLAN ${vid} of ${parent.name}`, 17, `VLAN ${vid} of ${parent.name} exists in another namespace`);
      throw e; // the kernel may have made it and its answer been lost: it goes with the scratch namespace
    }
    const made = getLink(snl, name);
    if (!made || made.kind !== 'vlan' || made.vlanId !== vid) throw new SysError(`find the new VLAN ${name}`, 19 /* ENODEV */);
    setLink(snl, made.index, { alias });
    try {
      setLink(snl, made.index, { netnsFd: dest });
    } catch (e) {
      if (e instanceof SysError && e.code === 'EEXIST') throw new SysError(`create VLAN ${vid} of ${parent.name}`, 17, `${name} exists and is not VLAN ${vid} of ${parent.name}`);
      throw e;
    }
  });
  // Here and recorded: from now on a failure deletes it (and a kill leaves it to the next sweep).
  let link: LinkInfo | undefined;
  try {
    link = vlanOn(dumpLinks(nl), parent.index, vid);
    if (!link || link.alias !== alias) throw new SysError(`find the new VLAN ${name}`, 19 /* ENODEV */);
    setLink(nl, link.index, { up: true });
    return { link: { ...link, up: true }, made: true };
  } catch (e) {
    if (link) deleteQuietly(nl, link.index);
    throw e;
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
    if (deleteLinkIfThere(nl, l.index)) n++;
  }
  return n;
}
