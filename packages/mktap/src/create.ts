// Creating the device: in the target namespace (entered on this thread and
// left again), under the namespace's lock when a quota applies, with the
// fds closed if any step fails; persistence is set last, once they are placed.
import {
  DeniedError, InputError, SysError, createTun, tunSetOwner, tunSetGroup, tunSetPersist, closeQuietly, close, dupCloexec,
  checkNamespace, nsOwnerUid, currentNetns, setns, lockExclusive, withNetlink, getLink, setLink, dumpLinks,
  CLONE_NEWNET, type FdSpace, type Netlink,
} from '@netgrant/core';
import type { Plan } from './plan.js';
import { randomMac, stableMac, formatMac } from './mac.js';

export interface Created {
  name: string;
  mac: string | undefined;
}

const QUOTA_LOCK_TIMEOUT_MS = 30000;

/** Count the live tun/tap devices owned by uid in this namespace. */
function ownedBy(nl: Netlink, uid: number): number {
  return dumpLinks(nl).filter((l) => l.kind === 'tun' && l.tun?.owner === uid).length;
}

function build(plan: Plan, fds: FdSpace, nl: Netlink): Created {
  let bridgeIndex: number | undefined;
  if (plan.bridge !== undefined) {
    const br = getLink(nl, plan.bridge);
    if (!br) throw new SysError(`find bridge ${plan.bridge}`, 19 /* ENODEV */);
    if (br.kind !== 'bridge') throw new InputError(`-b: ${plan.bridge} is not a bridge`);
    bridgeIndex = br.index;
  }
  const dev = createTun({ type: plan.type, name: plan.name, queues: plan.queues, vnetHdr: plan.vnetHdr, exclusive: true });
  let mac: Buffer | undefined;
  // Our own handle on the device, to make it persistent once its fds are placed.
  let ctl: number | undefined;
  try {
    if (plan.owner !== undefined) tunSetOwner(dev.fds[0]!, plan.owner);
    if (plan.group !== undefined) tunSetGroup(dev.fds[0]!, plan.group);
    const link = getLink(nl, dev.name);
    if (!link) throw new SysError(`find the new device ${dev.name}`, 19);
    if (plan.type === 'tap') {
      if (plan.mac === 'stable') {
        if (plan.peerUid === undefined) throw new InputError('--stable-mac: PEERUID not set (run peer-check first)');
        mac = stableMac(plan.peerUid, dev.name);
      } else mac = plan.mac === 'random' ? randomMac() : plan.mac;
    }
    setLink(nl, link.index, { mtu: plan.mtu, mac, txqueuelen: plan.txqueuelen, master: bridgeIndex, up: true });
    if (plan.persist) ctl = dupCloexec(dev.fds[0]!);
  } catch (e) {
    for (const fd of dev.fds) closeQuietly(fd);
    throw e;
  }
  try {
    // place closes every fd itself if it fails.
    fds.place(dev.fds, plan.fds);
    // Last: once persistent, the device outlives a failure, so nothing may
    // fail after this (a kill still may: docs/reliability.md).
    if (ctl !== undefined) tunSetPersist(ctl, true);
  } finally {
    if (ctl !== undefined) closeQuietly(ctl);
  }
  return { name: dev.name, mac: mac ? formatMac(mac) : undefined };
}

/** Create the device the plan describes and place its fds. */
export function createTap(plan: Plan, fds: FdSpace): Created {
  let home: number | undefined;
  if (plan.netnsFd !== undefined) {
    const ns = fds.fd(plan.netnsFd, '-N');
    checkNamespace(ns, CLONE_NEWNET, '-N');
    // Only a namespace the peer owns (its user namespace's owner is the peer).
    if (!plan.anyNetns && nsOwnerUid(ns) !== plan.peerUid) throw new DeniedError(`-N: the network namespace is not owned by uid ${plan.peerUid}`);
    home = currentNetns();
    setns(ns, CLONE_NEWNET);
  }
  try {
    // The socket is opened here, so it works in the device's namespace.
    return withNetlink((nl) => {
      if (plan.maxPerPeer === undefined) return build(plan, fds, nl);
      // Count and create under a lock on the namespace itself (its nsfs inode).
      const lock = currentNetns();
      try {
        lockExclusive(lock, QUOTA_LOCK_TIMEOUT_MS, 'lock the namespace for the tap quota');
        const owned = ownedBy(nl, plan.peerUid!);
        if (owned >= plan.maxPerPeer) throw new DeniedError(`quota reached: uid ${plan.peerUid} owns ${owned} tap/tun device${owned === 1 ? '' : 's'} here, at most ${plan.maxPerPeer}`);
        return build(plan, fds, nl);
      } finally {
        close(lock);
      }
    });
  } finally {
    if (home !== undefined) {
      setns(home, CLONE_NEWNET);
      close(home);
    }
  }
}
