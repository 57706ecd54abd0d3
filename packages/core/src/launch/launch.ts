// The launcher: a fresh network namespace holding one ipvlan or macvlan
// interface with an address from each configured subnet, routes and lo up;
// the calling thread (main thread) ends inside it. Used by mkipvlan and
// mkmacvlan. Nothing is ever created in the host's namespace: the link is
// created directly into the new one (IFLA_NET_NS_FD), so if anything fails
// the process exits and the namespace and the link go with it.
import { InputError, SysError, DeniedError } from '../errors.js';
import { unshareNet, currentNetns } from '../ns.js';
import { fstatSync } from 'node:fs';
import { close } from '../fd.js';
import { Netlink, withNetlink } from '../rtnl/socket.js';
import { createLink, getLink, setLink, dumpLinks, type LinkKind } from '../rtnl/link.js';
import { addAddress, dumpAddresses, IFA_F_NODAD } from '../rtnl/addr.js';
import { addRoute } from '../rtnl/route.js';
import { parseIp } from '../rtnl/ip.js';
import { ipToBig, bigToIp, contains, AF_INET6, type Cidr } from './cidr.js';
import { candidates } from './alloc.js';
import { forEachNamespace } from './scan.js';
import type { LaunchConfig } from './conf.js';

export interface LaunchRequest {
  kind: 'ipvlan' | 'macvlan';
  mode: string;
  ifname: string;
  config: LaunchConfig;
  /** The uid the namespace is for (quota and the interface's alias). */
  uid: number;
  /** Each step that needs a capability runs through this (capability-aware mode). */
  withCap?: <T>(cap: 'net_admin' | 'sys_admin', fn: () => T) => T;
  /** Called after the last use of a capability. */
  done?: (cap: 'sys_admin') => void;
}

export interface Launched {
  ifname: string;
  parent: string;
  /** addr/prefix, one per subnet. */
  addresses: string[];
  gateways: string[];
}

const TAG = 'netgrant uid=';

interface Plan {
  cidr: Cidr;
  gateway: string | undefined;
  excluded: Set<bigint>;
}

const addrBig = (a: string) => ipToBig(parseIp(a)!.bytes);

export function launch(req: LaunchRequest): Launched {
  const withCap = req.withCap ?? (<T>(_c: string, fn: () => T) => fn());
  const host = withCap('net_admin', () => Netlink.open());
  try {
    const links = dumpLinks(host);
    const addrs = dumpAddresses(host);
    // Each subnet's parent: the host interface holding an address in it (or the one named).
    let parentIndex: number | undefined;
    const plans: Plan[] = [];
    for (const s of req.config.subnets) {
      const inSubnet = addrs.filter((a) => contains(s.cidr, a.address));
      let index: number;
      if (s.parent !== undefined) {
        const l = links.find((x) => x.name === s.parent);
        if (!l) throw new InputError(`parent ${s.parent} for ${s.cidr.text}: no such interface`);
        index = l.index;
      } else {
        if (inSubnet.length === 0) throw new InputError(`${s.cidr.text}: no host interface has an address in it (name one with "parent")`);
        index = inSubnet[0]!.index;
      }
      if (parentIndex !== undefined && parentIndex !== index) throw new InputError(`${s.cidr.text}: on another parent than the subnets before it (one launch, one parent)`);
      parentIndex = index;
      const gateway = s.gateway ?? inSubnet.find((a) => a.index === index)?.address;
      const excluded = new Set(inSubnet.map((a) => addrBig(a.address)));
      if (gateway) excluded.add(addrBig(gateway));
      plans.push({ cidr: s.cidr, gateway, excluded });
    }
    const parent = links.find((l) => l.index === parentIndex)!;
    if (req.mode === 'l2' || req.kind === 'macvlan') {
      const missing = plans.find((p) => !p.gateway);
      if (missing) throw new InputError(`${missing.cidr.text}: no gateway (no host address on ${parent.name} in it; set "gateway")`);
    }

    // Every launch tags its interface with the uid and the parent (this
    // namespace's inode and the parent's index): other launches on the same
    // parent are found by it, in every namespace /proc shows. Their addresses
    // are excluded (macvlan has no kernel duplicate check) and they count
    // towards the uid's limit on this parent.
    const home = currentNetns();
    const parentTag = `parent=${fstatSync(home).ino}.${parent.index}`;
    close(home);
    const tag = `${TAG}${req.uid} ${parentTag}`;
    let mine = 0;
    withCap('sys_admin', () =>
      forEachNamespace((nl) => {
        const launched = dumpLinks(nl).filter((l) => l.alias?.startsWith(TAG) && l.alias.endsWith(` ${parentTag}`));
        if (launched.length === 0) return;
        if (launched.some((l) => l.alias === tag)) mine++;
        for (const a of dumpAddresses(nl)) for (const p of plans) if (contains(p.cidr, a.address)) p.excluded.add(addrBig(a.address));
      }),
    );
    if (req.config.limit !== undefined && mine >= req.config.limit) throw new DeniedError(`uid ${req.uid} already has ${mine} launched namespace${mine === 1 ? '' : 's'}, the limit is ${req.config.limit}`);

    // The new namespace, on this (main) thread; the link goes straight into it.
    withCap('sys_admin', () => unshareNet());
    req.done?.('sys_admin');
    const ns = currentNetns();
    try {
      const kind: LinkKind = req.kind === 'ipvlan' ? { kind: 'ipvlan', mode: req.mode as 'l2' | 'l3' | 'l3s' } : { kind: 'macvlan', mode: req.mode as 'bridge' };
      withCap('net_admin', () => createLink(host, kind, { name: req.ifname, parent: parent.index, netnsFd: ns }));
    } finally {
      close(ns);
    }
    return withCap('net_admin', () =>
      withNetlink((nl) => {
        const lo = getLink(nl, 'lo')!;
        setLink(nl, lo.index, { up: true });
        const link = getLink(nl, req.ifname);
        if (!link) throw new SysError(`find ${req.ifname} in the new namespace`, 19);
        // The alias marks it as ours and whose (the per-uid limit counts these).
        setLink(nl, link.index, { up: true, alias: tag });
        const addresses: string[] = [];
        const routed = new Set<number>();
        for (const p of plans) {
          let got: string | undefined;
          for (const v of candidates(p.cidr, p.excluded)) {
            const a = bigToIp(v, p.cidr.bits);
            try {
              addAddress(nl, link.index, a, p.cidr.prefix, p.cidr.family === AF_INET6 ? IFA_F_NODAD : 0);
              got = a;
              break;
            } catch (e) {
              // ipvlan: the kernel refuses an address another slave of the parent holds.
              if (e instanceof SysError && e.code === 'EADDRINUSE') continue;
              throw e;
            }
          }
          if (!got) throw new SysError(`allocate an address in ${p.cidr.text}`, 28 /* ENOSPC */, 'no free address in the subnet');
          addresses.push(`${got}/${p.cidr.prefix}`);
          if (routed.has(p.cidr.family)) continue;
          routed.add(p.cidr.family);
          if (req.kind === 'ipvlan' && req.mode !== 'l2') addRoute(nl, { family: p.cidr.family, oif: link.index });
          else addRoute(nl, { gateway: p.gateway!, oif: link.index });
        }
        return { ifname: req.ifname, parent: parent.name, addresses, gateways: plans.map((p) => p.gateway ?? '') };
      }),
    );
  } finally {
    host.close();
  }
}
