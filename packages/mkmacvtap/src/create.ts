// Creating the macvtap: on an allowed parent of the server's namespace,
// into the server's namespace or the client's (-N); carrying its lease
// record from its creation (a record with no node yet is stale after the
// grace, so a kill at any step leaves nothing the reaper keeps); its pin
// filter installed and its queues open before it is up; deleted if any step
// fails (a macvtap does not die with its fds). Quota and culling under the
// lease lock, as mktap's, where records count. With -V the parent is the
// VLAN's sub-interface, found or made (and the unused ones deleted) under
// the lease lock (@netgrant/lease vlan/subif.ts): the macvtap on it is its
// user while it lives.
import {
  DeniedError, InputError, SysError, Netlink, createLink, deleteLink, getLink, setLink, inNetns,
  closeQuietly, formatMac, withNetlink, type FdSpace,
} from '@netgrant/core';
import {
  checkClientNetns, checkRegistryDir, cull, viaScratchNetns, homeNetnsIno, reconcile, sweepVlans, undoSubInterface, vlanSubInterface, currentNetnsTrusted, netnsTrusted, formatRecord, installPin, monotonicMs, randomMac, stableMac, withLeaseLockAsync,
  type Lease, type LeaseRecord,
} from '@netgrant/lease';
import type { Plan } from './plan.js';
import { openQueues } from './device.js';

export const CREATOR = 'mkmacvtap';
const QUOTA_LOCK_TIMEOUT_MS = 10000;

export interface Created {
  name: string;
  guestMac: string;
}

function recordedFor(leases: Lease[], uid: number): number {
  return leases.filter((l) => l.link.kind === 'macvtap' && l.record.uid === uid).length;
}

function guestMacFor(plan: Plan, name: string): Buffer | undefined {
  const g = plan.guestMac ?? 'random';
  if (plan.mode === 'passthru') return undefined;
  if (g === 'stable') return stableMac(plan.peerUid!, name, 'guest');
  return g === 'random' ? randomMac('guest') : g;
}

/** A name of mkmacvtap's own (the kernel's macvtap%d cannot be found again by name in a namespace that is not ours). */
function pickName(): string {
  const { randomBytes } = require('node:crypto') as typeof import('node:crypto');
  return `mvtap${randomBytes(4).toString('hex')}`;
}

/**
 * Create the link on the parent (host: the server's namespace) and put it,
 * carrying its record, into the namespace this thread is in. The kernel
 * sets no alias in the request that creates a link, so the link is made
 * in a scratch namespace of its own (lease scratch.ts), gets its record
 * there, and only then moves: a kill before the move takes the scratch
 * namespace and the macvtap with it, one after it leaves a recorded lease
 * for the reaper.
 */
function createOn(host: Netlink, plan: Plan, lower: string, record: LeaseRecord): { name: string; alias: string } {
  const parent = getLink(host, lower);
  if (!parent) throw new InputError(`parent ${lower}: no such interface`);
  return viaScratchNetns((scratch, nl, dest) => {
    const mac = plan.mode === 'passthru' ? undefined : guestMacFor(plan, plan.name ?? '');
    createLink(host, { kind: 'macvtap', mode: plan.mode }, { name: 'mvtap0', parent: parent.index, mac, netnsFd: scratch });
    const link = getLink(nl, 'mvtap0');
    if (!link) throw new SysError('find the new macvtap', 19 /* ENODEV */);
    const alias = formatRecord({ ...record, mac: formatMac(link.mac!) });
    setLink(nl, link.index, { alias });
    for (let attempt = 0; ; attempt++) {
      const name = plan.name ?? pickName();
      try {
        setLink(nl, link.index, { name, netnsFd: dest });
        return { name, alias };
      } catch (e) {
        if (plan.name === undefined && attempt < 8 && e instanceof SysError && e.code === 'EEXIST') continue;
        throw e;
      }
    }
  });
}

function build(plan: Plan, fds: FdSpace, host: Netlink, target: number | undefined, lower: string): Created {
  const record: LeaseRecord = { kind: 'lease', by: CREATOR, uid: plan.peerUid ?? process.getuid!(), node: '0.0', born: monotonicMs() };
  const made = createOn(host, plan, lower, record);
  // From here on the link exists here: any failure deletes it.
  const nl = target === undefined ? host : Netlink.open();
  let index: number | undefined;
  try {
    const link = getLink(nl, made.name);
    if (!link || link.kind !== 'macvtap') throw new SysError(`find the new macvtap ${made.name}`, 19 /* ENODEV */);
    index = link.index;
    const mac = link.mac!;
    const queues = openQueues(made.name, link.index, plan.queues, plan.vnetHdr);
    try {
      // The record now names the node (and the MAC the kernel gave it in passthru mode).
      setLink(nl, link.index, { alias: formatRecord({ ...record, mac: formatMac(mac), node: queues.node }) });
      if (plan.pin) installPin(nl, link.index, { mac, addrs: plan.guestIps }, 'egress');
      setLink(nl, link.index, { up: true });
      fds.place(queues.fds, plan.fds);
    } catch (e) {
      for (const fd of queues.fds) closeQuietly(fd);
      throw e;
    }
    return { name: made.name, guestMac: formatMac(mac) };
  } catch (e) {
    try {
      if (index !== undefined) deleteLink(nl, index);
      else {
        const l = getLink(nl, made.name);
        if (l?.alias === made.alias) deleteLink(nl, l.index);
      }
    } catch {
      // gone already; a leftover's record (no holder) has it reaped
    }
    throw e;
  } finally {
    if (nl !== host) nl.close();
  }
}

/**
 * Create the macvtap the plan describes and place its queue fds. The wait
 * for the lease lock naps through fds.nap.
 */
export async function createMacvtap(plan: Plan, fds: FdSpace): Promise<Created> {
  const target = plan.netnsFd === undefined ? undefined : fds.fd(plan.netnsFd, '-N');
  if (target !== undefined) checkClientNetns(target, plan.peerUid, plan.anyNetns);
  const trusted = target === undefined ? currentNetnsTrusted() : netnsTrusted(target);
  if (plan.pin && !trusted) throw new InputError('--pin: the target namespace is owned by a user namespace of its own, whose owner could remove the filter');
  if (plan.maxPerPeer !== undefined && !trusted) throw new InputError('--max-per-peer: the target namespace is owned by a user namespace of its own, where records are the user\'s to forge: no quota can hold there');
  // The parent and the link's creation: in the server's namespace; everything
  // else on this thread in the macvtap's (its sysfs, its records), entered only
  // while the macvtap is made (any wait for the lock is at home).
  const host = Netlink.open();
  try {
    const run = (lower = plan.parent) => inNetns(target, () => {
      const live = trusted ? withNetlink(cull) : [];
      if (plan.maxPerPeer !== undefined) {
        const owned = recordedFor(live, plan.peerUid!);
        if (owned >= plan.maxPerPeer) throw new DeniedError(`quota reached: uid ${plan.peerUid} holds ${owned} macvtap lease${owned === 1 ? '' : 's'} here, at most ${plan.maxPerPeer}`);
      }
      return build(plan, fds, host, target, lower);
    });
    if (plan.vlan !== undefined) return await withLeaseLockAsync(QUOTA_LOCK_TIMEOUT_MS, fds.nap, () => onVlan(host, plan.parent, plan.vlan!, run));
    if (plan.maxPerPeer === undefined) return run();
    return await withLeaseLockAsync(QUOTA_LOCK_TIMEOUT_MS, fds.nap, () => run());
  } finally {
    host.close();
  }
}

/** run on VLAN vid's sub-interface of parent (this, the server's, namespace), under the lease lock. */
function onVlan(host: Netlink, parentName: string, vid: number, run: (lower: string) => Created): Created {
  const homeIno = homeNetnsIno();
  checkRegistryDir();
  const live = reconcile(host, homeIno).live;
  const parent = getLink(host, parentName);
  if (!parent) throw new InputError(`parent ${parentName}: no such interface`);
  const sub = vlanSubInterface(host, homeIno, parent, vid);
  try {
    sweepVlans(host, homeIno, live, sub.link.index);
    return run(sub.link.name);
  } catch (e) {
    undoSubInterface(host, sub);
    throw e;
  }
}
