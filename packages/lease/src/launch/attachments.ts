// netgrant-cni's macvlan and ipvlan attachments: client entries of the
// launched-namespace registry (registry.ts) that carry the attachment's key
// (cni=NETWORK/CONTAINERID/IFNAME), as does their interface's record. The
// entry, in root's directory, is what counts: the interface sits in the
// container's namespace, whose root may be the container's user and could
// write any record there. DEL and GC find exactly theirs by the key and
// delete the interface from the launcher's namespace through the entry's
// namespace id (IFLA_TARGET_NETNSID: DEL may come without CNI_NETNS), then
// the entry; an entry whose namespace is gone is a tombstone, which
// reconcile ends. Under the lease lock, as root. Only the plugin's own
// uid's entries (uid 0's): a service's --cni attachments (launch/cni.ts)
// are its users', under their uids, and a network of the same name must
// not reach them.
import { Netlink } from '@netgrant/core';
import { checkRegistryDir, deletePeerLink, entryRecord, homeNetnsIno, reconcile, removeEntry, type LaunchEntry } from '../registry.js';
import { underLeaseLock } from './launch.js';
import type { LauncherCap } from './privileges.js';

const asRoot = <U>(_cap: LauncherCap, fn: () => U): U => fn();

/** fn with uid's live attachment entries of this (the launcher's) namespace, under the lease lock. */
function withEntries<T>(uid: number, lockWaitMs: number, fn: (host: Netlink, live: LaunchEntry[]) => T): T {
  const host = Netlink.open();
  try {
    const homeIno = homeNetnsIno();
    return underLeaseLock(lockWaitMs, asRoot, () => {
      checkRegistryDir();
      return fn(host, reconcile(host, homeIno).live.filter((e) => e.uid === uid && e.cni !== undefined));
    });
  } finally {
    host.close();
  }
}

/** An attachment's interface, then its entry (a tombstone's interface went with its namespace). */
function end(host: Netlink, e: LaunchEntry): void {
  if (e.gone !== undefined) return;
  deletePeerLink(host, e.nsid, entryRecord(e));
  removeEntry(e);
}

/** The live attachment with key, if there is one. */
export function findAttachment(uid: number, key: string, lockWaitMs: number): LaunchEntry | undefined {
  return withEntries(uid, lockWaitMs, (_host, live) => live.find((e) => e.cni === key && e.gone === undefined));
}

/** DEL: the attachment with key, if there is one (DEL may be repeated); whether there was. */
export function endAttachment(uid: number, key: string, lockWaitMs: number): boolean {
  return withEntries(uid, lockWaitMs, (host, live) => {
    const mine = live.filter((e) => e.cni === key);
    for (const e of mine) end(host, e);
    return mine.length > 0;
  });
}

/** GC: every attachment of network not in valid (keys); the keys ended. */
export function gcAttachments(uid: number, network: string, valid: ReadonlySet<string>, lockWaitMs: number): string[] {
  return withEntries(uid, lockWaitMs, (host, live) => {
    const stale = live.filter((e) => e.cni?.startsWith(`${network}/`) && !valid.has(e.cni));
    for (const e of stale) end(host, e);
    return stale.map((e) => e.cni!);
  });
}
