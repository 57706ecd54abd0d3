// The veth launch: a fresh network namespace whose end of a veth pair is
// named IFNAME and has one address per configured subnet; the other end
// (the host end) stays in the launcher's namespace under a name derived from
// the new namespace (never the client's choice) and carries the lease
// record. Routed (Calico's recipe): the host end has a /32 (/128) route to
// each address, proxy ARP/NDP and forwarding; the namespace's default
// routes go through a link-local gateway (169.254.1.1, fe80::1) whose
// neighbour entry is the host end's MAC. Bridged (`bridge BR`): the host
// end is a port of BR and the namespace routes via the subnet's gateway.
//
// What is in use is decided under the lease lock from the host ends'
// records in the launcher's namespace alone: only root can write an alias
// there, and a veth pair lives exactly as long as the namespace its inside
// end is in, however that namespace is kept alive (a process, an fd, a bind
// mount). If anything fails the process exits, the namespace goes, and the
// pair with its routes, neighbour entries and sysctls goes with it.
//
// With -N the inside end goes into the client's own namespace, where the
// client has CAP_NET_ADMIN: the host end pins what it may send (lease/pin:
// the inside end's MAC, the lease's addresses, no DHCP or RA), and a
// failure deletes the pair (that namespace outlives this process).
import {
  InputError, SysError, DeniedError, Netlink, unshareNet, setns, currentNetns, close, CLONE_NEWNET,
  createLink, getLink, setLink, deleteLink, dumpLinks, dumpAddresses, addAddress, addRoute, addNeighbour, setIfSysctl,
  IFA_F_NODAD, AF_INET, AF_INET6, type LinkInfo,
} from '@netgrant/core';
import { createHash } from 'node:crypto';
import { existsSync, fstatSync } from 'node:fs';
import { poolPlans, drawAddresses, type PoolPlan } from '../pool.js';
import { routeHostEnd } from '../routed.js';
import type { LauncherCap } from '../launch/privileges.js';
import { leasesOf } from '../leases.js';
import { formatRecord } from '../record.js';
import { currentNetnsTrusted } from '../trust.js';
import { underLeaseLock } from '../launch/launch.js';
import { cullTables, nft } from '../tables.js';
import { installPin } from '../pin/index.js';
import { netlinkIn } from '../launch/target.js';
import type { VethConfig } from './conf.js';
import { natRuleset, forwardText, type Forward } from './nat.js';

export const VETH_BY = 'mkveth';

export interface VethRequest {
  ifname: string;
  config: VethConfig;
  uid: number;
  lockWaitMs: number;
  withCap: <T>(cap: LauncherCap, fn: () => T) => T;
  done: (cap: 'sys_admin') => void;
  masquerade: boolean;
  forwards: Forward[];
  /** The client's namespace (-N, checked), instead of a new one. */
  target?: number;
  /** netgrant-cni: the attachment's key for the record (cniKey). */
  cni?: string;
}

export interface VethLaunched {
  ifname: string;
  hostIf: string;
  /** addr/prefix, one per subnet, as the namespace end has them. */
  addresses: string[];
  gateways: string[];
  /** The MACs of the host end and of the namespace end. */
  hostMac: Buffer;
  mac: Buffer;
}

/** The host end's name: from the new namespace's inode, unique among live namespaces; within IFNAMSIZ. */
export function hostEndName(nsIno: number): string {
  return `ngv-${nsIno.toString(16).slice(-11)}`;
}

/**
 * A CNI attachment's host end (a container namespace may have several):
 * from its key, and from its uid unless root's (rootful netgrant-cni), so
 * two users' attachments of the same key never collide.
 */
export function cniHostEndName(key: string, uid = 0): string {
  return `ngv-${createHash('sha256').update(uid === 0 ? key : `${uid}:${key}`).digest('hex').slice(0, 11)}`;
}

function plansFor(host: Netlink, config: VethConfig): { plans: PoolPlan[]; bridge: LinkInfo | undefined } {
  let bridge: LinkInfo | undefined;
  if (config.bridge !== undefined) {
    bridge = dumpLinks(host).find((l) => l.name === config.bridge);
    if (!bridge || bridge.kind !== 'bridge') throw new InputError(`bridge ${config.bridge}: no such bridge`);
  }
  return { plans: poolPlans(config.subnets, dumpAddresses(host), bridge), bridge };
}

export function launchVeth(req: VethRequest): VethLaunched {
  const { withCap } = req;
  if (!currentNetnsTrusted()) throw new InputError('the launcher\'s namespace is owned by a user namespace of its own: records there could be forged');
  const host = withCap('net_admin', () => Netlink.open());
  const home = currentNetns();
  try {
    const { plans, bridge } = plansFor(host, req.config);
    return underLeaseLock(req.lockWaitMs, withCap, () => {
      // What is in use: the host ends' records, in this namespace only. No table outlives its lease: a
      // stale one's port forwards would reach whoever gets its address next. (A capability-aware
      // launcher cannot run nft with privilege; it makes no table either, and leaves this to the reaper.)
      const nat = req.masquerade || req.forwards.length > 0;
      if (process.geteuid?.() === 0) cullTables(() => dumpLinks(host));
      const leases = leasesOf(dumpLinks(host)).filter((l) => l.record.kind === 'lease' && l.record.by === VETH_BY);
      if (req.cni !== undefined && leases.some((l) => l.record.cni === req.cni && l.record.uid === req.uid)) throw new SysError(`attachment ${req.cni}`, 17 /* EEXIST */, 'it has an interface already');
      const mine = leases.filter((l) => l.record.uid === req.uid).length;
      if (req.config.limit !== undefined && mine >= req.config.limit) throw new DeniedError(`uid ${req.uid} already has ${mine} veth namespace${mine === 1 ? '' : 's'}, the limit is ${req.config.limit}`);
      const forwarded = new Set(leases.flatMap((l) => (l.record.ports ?? []).map((p) => p.split(':').slice(0, 2).join('/'))));
      for (const f of req.forwards) if (forwarded.has(`${f.proto}/${f.hostPort}`)) throw new SysError(`forward host port ${f.hostPort}/${f.proto}`, 98 /* EADDRINUSE */, 'another lease forwards it');
      const addresses = drawAddresses(plans, leases, !bridge);
      const record = formatRecord({ kind: 'lease', by: VETH_BY, uid: req.uid, addrs: addresses, ports: req.forwards.map(forwardText), nft: nat, ...(req.cni !== undefined ? { cni: req.cni } : {}) });

      // The namespace (a new one, or the client's), and a socket in it; then everything from home.
      if (req.target === undefined) withCap('sys_admin', () => unshareNet());
      const ns = req.target ?? currentNetns();
      try {
        const hostIf = req.cni !== undefined ? cniHostEndName(req.cni, req.uid) : hostEndName(fstatSync(ns).ino);
        const inside = netlinkIn(req.target, home, withCap);
        let hostEnd: LinkInfo | undefined;
        let mac: Buffer | undefined;
        try {
          withCap('net_admin', () => {
            createLink(host, { kind: 'veth', peerName: req.ifname, peerNetnsFd: ns }, { name: hostIf });
            hostEnd = getLink(host, hostIf) ?? undefined;
            if (!hostEnd) throw new SysError(`find ${hostIf}`, 19 /* ENODEV */);
            // The record first: from here on the launch counts (we hold the lease lock).
            setLink(host, hostEnd.index, { alias: record });
            configureHostEnd(host, hostEnd, plans, addresses, bridge);
            const insideEnd = configureInside(inside, req.ifname, hostEnd, plans, addresses, { bridged: bridge !== undefined, fresh: req.target === undefined });
            // The client owns its namespace and may re-address the inside end: what it sends is pinned where it cannot reach.
            mac = insideEnd.mac!;
            if (req.target !== undefined) installPin(host, hostEnd.index, { mac: insideEnd.mac!, addrs: addresses.map((a) => a.split('/')[0]!) }, 'ingress');
            // The table last: nothing but entering the namespace can fail after it, and that deletes it.
            if (nat) nft(['-f', '-'], `add table inet ${hostIf}`, natRuleset(hostIf, record, addresses, req.masquerade, req.forwards));
          });
          // A new namespace: the process ends in it. (The client's stays the client's.)
          if (req.target === undefined) withCap('sys_admin', () => setns(ns, CLONE_NEWNET));
        } catch (e) {
          // A new namespace goes with this process, and the pair with it; in the client's namespace the pair must be deleted.
          if (hostEnd) withCap('net_admin', () => undo(host, hostEnd!, nat, req.target !== undefined));
          throw e;
        } finally {
          inside.close();
        }
        req.done('sys_admin');
        return { ifname: req.ifname, hostIf, addresses, gateways: plans.map((p) => p.gateway), hostMac: hostEnd!.mac!, mac: mac! };
      } finally {
        if (req.target === undefined) close(ns);
      }
    });
  } finally {
    close(home);
    host.close();
  }
}

/** A failed launch's table, and (in the client's namespace, which outlives this process) its pair. */
function undo(host: Netlink, hostEnd: LinkInfo, nat: boolean, pair: boolean): void {
  if (nat) {
    try {
      nft(['delete', 'table', 'inet', hostEnd.name], `delete table inet ${hostEnd.name}`);
    } catch {
      /* not made */
    }
  }
  if (pair) deleteLink(host, hostEnd.index);
}

/** In the launcher's namespace: the bridge port, or routed (lease/routed.ts). */
function configureHostEnd(host: Netlink, h: LinkInfo, plans: PoolPlan[], addresses: string[], bridge: LinkInfo | undefined): void {
  if (bridge) {
    // A bridge port has no addresses of its own (not even IPv6's link-local one).
    if (existsSync('/proc/sys/net/ipv6')) setIfSysctl('ipv6/conf', h.name, 'disable_ipv6', '1');
    setLink(host, h.index, { master: bridge.index, up: true });
    return;
  }
  routeHostEnd(host, h, { addresses, gateways: plans.map((p) => p.gateway) });
}

/** Through a socket of the namespace: lo (a new namespace's), the inside end, its addresses, the gateways' neighbour entries (routed) and default routes. */
function configureInside(nl: Netlink, ifname: string, hostEnd: LinkInfo, plans: PoolPlan[], addresses: string[], o: { bridged: boolean; fresh: boolean }): LinkInfo {
  if (o.fresh) setLink(nl, getLink(nl, 'lo')!.index, { up: true });
  const link = getLink(nl, ifname);
  if (!link) throw new SysError(`find ${ifname} in the new namespace`, 19 /* ENODEV */);
  setLink(nl, link.index, { up: true });
  plans.forEach((p, i) => {
    const [addr, prefix] = addresses[i]!.split('/') as [string, string];
    addAddress(nl, link.index, addr, Number(prefix), p.cidr.family === AF_INET6 ? IFA_F_NODAD : 0);
    if (!o.bridged) {
      // The gateway is the host end, whether or not the host routes the link-local address elsewhere (proxy ARP answers only then).
      addNeighbour(nl, { index: link.index, address: p.gateway, lladdr: hostEnd.mac! });
      if (p.cidr.family === AF_INET) addRoute(nl, { dst: p.gateway, prefix: 32, oif: link.index });
    }
    addRoute(nl, { gateway: p.gateway, oif: link.index });
  });
  return link;
}
