// Creating the device: in the target namespace (entered on this thread and
// left again), with its lease record set and its pin filter installed
// before it is up and its fds are placed (so no lessee ever sees it without
// either), and under the lease lock when a quota applies; the fds are closed if
// any step fails, which deletes the device (it is not persistent yet);
// persistence is set last, once they are placed.
import {
  DeniedError, InputError, SysError, createTun, tunSetOwner, tunSetGroup, tunSetPersist, closeQuietly, dupCloexec,
  inNetns, Netlink, getLink, setLink, dumpAddresses,
  formatMac, type FdSpace,
} from '@netgrant/core';
import { checkClientNetns, cull, currentNetnsTrusted, netnsTrusted, formatRecord, installPin, randomMac, stableMac, withLeaseLockAsync, poolPlans, drawAddresses, routeHostEnd, type Lease } from '@netgrant/lease';
import type { Plan } from './plan.js';

export interface Created {
  name: string;
  mac: string | undefined;
  guestMac: string | undefined;
  /** --pool: the guest's addresses (addr/prefix) and gateways, one per subnet. */
  addresses?: string[];
  gateways?: string[];
}

/** What a pool gave the lease. */
interface Addressed {
  addresses: string[];
  gateways: string[];
}

export const CREATOR = 'mktap';
const QUOTA_LOCK_TIMEOUT_MS = 10000;

/** The tun/tap leases recorded for uid (records only: never a field the lessee can rewrite). */
function recordedFor(leases: Lease[], uid: number): number {
  return leases.filter((l) => l.link.kind === 'tun' && l.record.uid === uid).length;
}

function macFor(choice: Buffer | 'random' | 'stable', plan: Plan, name: string, side: 'host' | 'guest'): Buffer {
  if (choice === 'stable') {
    if (plan.peerUid === undefined) throw new InputError(`${side === 'host' ? '--stable-mac' : '--guest-mac stable'}: PEERUID not set (run peer-check first)`);
    return stableMac(plan.peerUid, name, side);
  }
  return choice === 'random' ? randomMac(side) : choice;
}

function build(plan: Plan, fds: FdSpace, nl: Netlink, addressed?: Addressed): Created {
  let bridgeIndex: number | undefined;
  if (plan.bridge !== undefined) {
    const br = getLink(nl, plan.bridge);
    if (!br) throw new SysError(`find bridge ${plan.bridge}`, 19 /* ENODEV */);
    if (br.kind !== 'bridge') throw new InputError(`-b: ${plan.bridge} is not a bridge`);
    // Fix the bridge's address at what it is: a bridge with no set address
    // takes its lowest port's, and a lessee can set its tap's MAC through
    // the fd (SIOCSIFHWADDR) with no capability. Setting it to itself
    // marks it set (NET_ADDR_SET) and changes nothing else.
    if (br.mac) setLink(nl, br.index, { mac: br.mac });
    bridgeIndex = br.index;
  }
  const dev = createTun({ type: plan.type, name: plan.name, queues: plan.queues, vnetHdr: plan.vnetHdr, exclusive: true });
  let mac: Buffer | undefined;
  let guestMac: Buffer | undefined;
  // Our own handle on the device, to make it persistent once its fds are placed.
  let ctl: number | undefined;
  try {
    if (plan.owner !== undefined) tunSetOwner(dev.fds[0]!, plan.owner);
    if (plan.group !== undefined) tunSetGroup(dev.fds[0]!, plan.group);
    const link = getLink(nl, dev.name);
    if (!link) throw new SysError(`find the new device ${dev.name}`, 19);
    if (plan.type === 'tap') {
      mac = macFor(plan.mac, plan, dev.name, 'host');
      if (plan.guestMac !== undefined) guestMac = macFor(plan.guestMac, plan, dev.name, 'guest');
    }
    const alias = formatRecord({
      kind: plan.persist ? 'persist' : 'lease',
      by: CREATOR,
      uid: plan.peerUid ?? plan.owner ?? process.getuid!(),
      owner: plan.owner ?? null,
      group: plan.group ?? null,
      mac: mac ? formatMac(mac) : undefined,
      ...(addressed ? { guest: formatMac(guestMac!), addrs: addressed.addresses, gw: addressed.gateways } : {}),
    });
    // Up last: the device carries its record before it can pass a frame.
    setLink(nl, link.index, { mtu: plan.mtu, mac, txqueuelen: plan.txqueuelen, alias });
    // The filter before the device is up or anyone holds its fds: never an
    // unfiltered lease. It lives in the device and dies with it.
    const poolIps = addressed?.addresses.map((a) => a.split('/')[0]!) ?? [];
    if (plan.pin) installPin(nl, link.index, { mac: guestMac ?? 'learn', addrs: [...poolIps, ...plan.guestIps.filter((a) => !poolIps.includes(a))] }, 'ingress');
    if (plan.routed) routeHostEnd(nl, link, { addresses: addressed!.addresses, gateways: addressed!.gateways, gatewayAddress: true });
    else setLink(nl, link.index, { master: bridgeIndex, up: true });
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
  return { name: dev.name, mac: mac ? formatMac(mac) : undefined, guestMac: guestMac ? formatMac(guestMac) : undefined, ...addressed };
}

/** The pool's addresses for a new lease: none a live lease records (the caller culled them, under the lease lock). */
function allocate(plan: Plan, nl: Netlink, live: Lease[]): Addressed {
  const bridge = plan.bridge === undefined ? undefined : getLink(nl, plan.bridge) ?? undefined;
  if (plan.bridge !== undefined && bridge?.kind !== 'bridge') throw new InputError(`-b: ${plan.bridge} is not a bridge`);
  const plans = poolPlans(plan.pool!.subnets, dumpAddresses(nl), bridge);
  return { addresses: drawAddresses(plans, live, plan.routed), gateways: plans.map((p) => p.gateway) };
}

/**
 * Create the device the plan describes and place its fds. The wait for the
 * lease lock naps through fds.nap: inside the resident server it never
 * blocks the event loop and ends by the connection's deadline.
 */
export async function createTap(plan: Plan, fds: FdSpace): Promise<Created> {
  const ns = plan.netnsFd === undefined ? undefined : fds.fd(plan.netnsFd, '-N');
  // Only a namespace the peer owns (its user namespace's owner is the peer), never our own.
  if (ns !== undefined) checkClientNetns(ns, plan.peerUid, plan.anyNetns);
  // Records count, and stale leases are ours to end, only where no user
  // can write records: in a namespace a user owns, the user could forge
  // or hide any record (and create taps there itself).
  const trusted = ns === undefined ? currentNetnsTrusted() : netnsTrusted(ns);
  if (plan.pin && !trusted) throw new InputError('--pin: the target namespace is owned by a user namespace of its own, whose owner could remove the filter');
  // The device, and the socket that configures it, in its namespace (entered
  // on this thread only while they are made; any wait for the lock is at home).
  const make = (locked: boolean) => inNetns(ns, () => {
    const nl = Netlink.open();
    try {
      if (!locked) {
        if (trusted) cull(nl);
        return build(plan, fds, nl);
      }
      const live = cull(nl);
      if (plan.maxPerPeer !== undefined) {
        const owned = recordedFor(live, plan.peerUid!);
        if (owned >= plan.maxPerPeer) throw new DeniedError(`quota reached: uid ${plan.peerUid} holds ${owned} tap/tun lease${owned === 1 ? '' : 's'} here, at most ${plan.maxPerPeer}`);
      }
      return build(plan, fds, nl, plan.pool ? allocate(plan, nl, live) : undefined);
    } finally {
      nl.close();
    }
  });
  if (plan.maxPerPeer === undefined && plan.pool === undefined) return make(false);
  if (!trusted && plan.pool) throw new InputError('--pool: the target namespace is owned by a user namespace of its own, where records are the user\'s to forge: no address can be known free there');
  if (!trusted) throw new InputError('--max-per-peer: the target namespace is owned by a user namespace of its own, where records are the user\'s to forge: no quota can hold there');
  // Cull, count, allocate and create under the lease lock (root's alone).
  return await withLeaseLockAsync(QUOTA_LOCK_TIMEOUT_MS, fds.nap, () => make(true));
}
