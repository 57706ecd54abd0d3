// CNI attachments of the veth kind: host ends whose record carries a
// `cni=` key, in the creator's namespace (where only root writes an alias).
// An attachment is one uid's: rootful netgrant-cni's are uid 0's, a
// service's (mkveth --cni) the peer's. Every lookup is by (uid, key), so a
// user's DEL, CHECK or GC never touches another's, nor the runtime's.
import { Netlink, deleteLinkIfThere, dumpLinks, type Env } from '@netgrant/core';
import { leasesOf, type Lease } from '../leases.js';
import { setCniReply, type CniRequest } from '../cni.js';
import type { LauncherCap } from '../launch/privileges.js';
import { VETH_BY } from './launch.js';

type WithCap = <T>(cap: LauncherCap, fn: () => T) => T;
const asIs: WithCap = (_c, fn) => fn();

/** uid's veth leases in nl's namespace that are CNI attachments. */
export function vethAttachments(nl: Netlink, uid: number): Lease[] {
  return leasesOf(dumpLinks(nl)).filter((l) => l.record.kind === 'lease' && l.record.by === VETH_BY && l.record.uid === uid && l.record.cni !== undefined);
}

/** DEL: uid's attachment key, if there is one (its namespace may be gone, or DEL repeated); whether one was deleted. */
export function delVethAttachment(uid: number, key: string, withCap: WithCap = asIs): boolean {
  const nl = Netlink.open();
  try {
    const found = vethAttachments(nl, uid).filter((l) => l.record.cni === key);
    for (const l of found) withCap('net_admin', () => deleteLinkIfThere(nl, l.link.index));
    return found.length > 0;
  } finally {
    nl.close();
  }
}

/** GC: every attachment of uid in network that is not in valid (keys); the keys removed. */
export function gcVethAttachments(uid: number, network: string, valid: ReadonlySet<string>, withCap: WithCap = asIs): string[] {
  const nl = Netlink.open();
  const removed: string[] = [];
  try {
    for (const l of vethAttachments(nl, uid)) {
      const key = l.record.cni!;
      if (key.startsWith(`${network}/`) && !valid.has(key)) {
        withCap('net_admin', () => deleteLinkIfThere(nl, l.link.index));
        removed.push(key);
      }
    }
  } finally {
    nl.close();
  }
  return removed;
}

/** uid's attachment key, or undefined. */
export function findVethAttachment(uid: number, key: string): Lease | undefined {
  const nl = Netlink.open();
  try {
    return vethAttachments(nl, uid).find((l) => l.record.cni === key);
  } finally {
    nl.close();
  }
}

/**
 * mkveth --cni, for every operation but ADD: the answer in CNIREPLY (and,
 * for CHECK, the record's addresses in NETADDRS for the client to compare
 * with its interface). STATUS is served once the pool has been read.
 */
export function serveVethCni(req: CniRequest, e: Env, ifname: string, withCap: WithCap): string {
  switch (req.op) {
    case 'DEL': {
      const gone = delVethAttachment(req.uid, req.key!, withCap);
      setCniReply(e, 'ok');
      return gone ? `deleted ${req.key}` : `no ${req.key} (nothing to do)`;
    }
    case 'GC': {
      const removed = gcVethAttachments(req.uid, req.network, req.valid!, withCap);
      setCniReply(e, 'ok');
      return `collected ${removed.length}${removed.length ? `: ${removed.join(' ')}` : ''}`;
    }
    case 'CHECK': {
      const l = findVethAttachment(req.uid, req.key!);
      if (!l) setCniReply(e, `3 no such attachment ${req.key}`);
      else if (!l.link.up) setCniReply(e, `100 host end ${l.link.name} is down`);
      else setCniReply(e, 'ok', { NETIF: ifname, NETADDRS: (l.record.addrs ?? []).join(','), NETHOSTIF: l.link.name });
      return `checked ${req.key}`;
    }
    default:
      setCniReply(e, 'ok');
      return 'status: the pool is readable';
  }
}
