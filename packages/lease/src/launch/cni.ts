// CNI attachments of the launchers (mkmacvlan, mkipvlan --cni): registry
// entries (registry.ts) with a `cni=` key, one uid's. The interface is in
// the client's own namespace, where its record is the client's to rewrite,
// so only the entry (root's, in a root-only directory) says what exists.
// An entry goes only once the kernel says its namespace is gone: the
// client owns the interface and could keep it, with its address, after any
// delete of ours, so DEL and GC free the address when the runtime deletes
// the container's namespace (within TOMBSTONE_SECONDS), never before.
import { Netlink, type Env } from '@netgrant/core';
import { checkRegistryDir, homeNetnsIno, reconcile, type LaunchEntry } from '../registry.js';
import { setCniReply, type CniRequest } from '../cni.js';
import { underLeaseLock } from './launch.js';
import type { LauncherCap } from './privileges.js';

type WithCap = <T>(cap: LauncherCap, fn: () => T) => T;

/** The live attachments of uid made by launcher by, from the registry reconciled with the kernel (under the lease lock). */
export function launchedAttachments(by: string, uid: number, lockWaitMs: number, withCap: WithCap): LaunchEntry[] {
  const homeIno = homeNetnsIno();
  const host = withCap('net_admin', () => Netlink.open());
  try {
    return underLeaseLock(lockWaitMs, withCap, () =>
      withCap('dac_override', () => {
        checkRegistryDir();
        return withCap('net_admin', () => reconcile(host, homeIno).live);
      }),
    ).filter((e) => e.by === by && e.uid === uid && e.cni !== undefined && e.gone === undefined);
  } finally {
    host.close();
  }
}

/** A launcher's --cni, for every operation but ADD: the answer in CNIREPLY; what to log. */
export function serveLaunchedCni(req: CniRequest, env: Env, by: string, ifname: string, lockWaitMs: number, withCap: WithCap): string {
  if (req.op === 'STATUS') {
    setCniReply(env, 'ok');
    return 'status: the pool is readable';
  }
  const mine = launchedAttachments(by, req.uid, lockWaitMs, withCap);
  if (req.op === 'CHECK') {
    const e = mine.find((x) => x.cni === req.key);
    if (!e) setCniReply(env, `3 no such attachment ${req.key}`);
    else setCniReply(env, 'ok', { NETIF: ifname, NETADDRS: e.addresses.join(',') });
    return `checked ${req.key}`;
  }
  const held = req.op === 'DEL' ? mine.filter((x) => x.cni === req.key) : mine.filter((x) => x.cni!.startsWith(`${req.network}/`) && !req.valid!.has(x.cni!));
  setCniReply(env, 'ok');
  return held.length ? `${held.map((x) => x.cni).join(' ')}: held until the namespace goes` : 'nothing to do';
}
