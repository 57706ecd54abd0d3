// netgrant-cni's kind tap (for Kata-like runtimes, whose VM monitor attaches
// to the tap by name): a tap in the container's namespace under the
// attachment's interface name, with mktap's record (by=mktap) carrying the
// attachment's key. The plugin exits after ADD, so the tap is persistent
// (made so last, after its record and MTU are set: until then closing its
// fd deletes it), recorded `persist` (never stale to the reaper's rules,
// stale.ts: a persistent `lease` would be), owned by the plugin's uid (an
// ownerless persistent tap could be attached by anyone), and ends with DEL
// or GC by its key, or with its namespace.
import { InputError, SysError, Netlink, closeQuietly, createTun, deleteLinkIfThere, dumpLinks, formatMac, getLink, inNetns, setLink, tunSetOwner, tunSetPersist } from '@netgrant/core';
import { leasesOf, type Lease } from './leases.js';
import { formatRecord } from './record.js';
import { randomMac } from './mac.js';
import { forEachNamespace } from './launch/scan.js';

export const TAP_BY = 'mktap';

export interface AttachmentTap {
  /** The container's namespace (checked by the caller). */
  ns: number;
  name: string;
  /** The attachment's key (cniKey). */
  cni: string;
  mtu?: number;
  multiQueue?: boolean;
}

/** The attachment taps of nl's namespace. */
function tapsOf(nl: Netlink): Lease[] {
  return leasesOf(dumpLinks(nl)).filter((l) => l.link.kind === 'tun' && l.record.by === TAP_BY && l.record.cni !== undefined);
}

/** ADD: the tap, in t.ns; its MAC. */
export function makeAttachmentTap(t: AttachmentTap): Buffer {
  return inNetns(t.ns, () => {
    const nl = Netlink.open();
    try {
      if (tapsOf(nl).some((l) => l.record.cni === t.cni)) throw new SysError(`attachment ${t.cni}`, 17 /* EEXIST */, 'it has an interface already');
      const uid = process.getuid!();
      const mac = randomMac('host');
      const record = formatRecord({ kind: 'persist', by: TAP_BY, uid, owner: uid, group: null, mac: formatMac(mac), cni: t.cni });
      const dev = createTun({ type: 'tap', name: t.name, exclusive: true, ...(t.multiQueue ? { multiQueue: true } : {}) });
      try {
        tunSetOwner(dev.fds[0]!, uid);
        const link = getLink(nl, dev.name);
        if (!link) throw new SysError(`find the new tap ${dev.name}`, 19 /* ENODEV */);
        setLink(nl, link.index, { mac, alias: record, ...(t.mtu !== undefined ? { mtu: t.mtu } : {}) });
        setLink(nl, link.index, { up: true });
        tunSetPersist(dev.fds[0]!, true);
      } finally {
        for (const fd of dev.fds) closeQuietly(fd);
      }
      return mac;
    } finally {
      nl.close();
    }
  });
}

/** The attachment's tap in ns, if there is one. */
export function findAttachmentTap(ns: number, cni: string): Lease | undefined {
  return inNetns(ns, () => {
    const nl = Netlink.open();
    try {
      return tapsOf(nl).find((l) => l.record.cni === cni);
    } finally {
      nl.close();
    }
  });
}

/** DEL: the attachment's tap in ns, if there is one. */
export function endAttachmentTap(ns: number, cni: string): boolean {
  return inNetns(ns, () => {
    const nl = Netlink.open();
    try {
      const mine = tapsOf(nl).filter((l) => l.record.cni === cni);
      for (const l of mine) deleteLinkIfThere(nl, l.link.index);
      return mine.length > 0;
    } finally {
      nl.close();
    }
  });
}

/**
 * GC: every attachment tap of network not in valid, in each namespace a
 * process is in (GC names no namespace) and no user owns (there records
 * are the user's to forge); the keys ended.
 */
export function gcAttachmentTaps(network: string, valid: ReadonlySet<string>): string[] {
  if (network.includes('/')) throw new InputError('bad network name');
  const ended: string[] = [];
  forEachNamespace((nl) => {
    for (const l of tapsOf(nl)) {
      if (!l.record.cni!.startsWith(`${network}/`) || valid.has(l.record.cni!)) continue;
      deleteLinkIfThere(nl, l.link.index);
      ended.push(l.record.cni!);
    }
  }, { trustedOnly: true });
  return ended;
}
