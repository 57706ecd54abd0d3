// What a launch for netgrant-cni asks beyond the configuration, checked
// against it: the parent it names ("master": the configuration's, or the
// launch is refused), the interface's MTU (at most its parent's), and the
// addresses a delegated IPAM plugin gave (each in a configured subnet,
// none another launch's or the host's), with the plugin's routes.
import { DeniedError, InputError, SysError, addAddress, addRoute, parseIp, IFA_F_NODAD, AF_INET6, type LinkInfo, type Netlink, type Route } from '@netgrant/core';
import { contains, type Cidr } from './cidr.js';

/** A delegated IPAM plugin's result, as applied: addr/prefix, a gateway per address ('' for none), routes (no oif). */
export interface Assigned {
  addresses: string[];
  gateways: string[];
  routes: Route[];
}

export interface Asked {
  /** The parent's name (CNI "master"). */
  master?: string;
  mtu?: number;
  assigned?: Assigned;
}

/** The checks made before anything exists. */
export function checkAsked(a: Asked, links: LinkInfo[], parent: LinkInfo, subnets: readonly Cidr[]): void {
  if (a.master !== undefined && a.master !== parent.name) {
    if (!links.some((l) => l.name === a.master)) throw new InputError(`master ${a.master}: no such interface`);
    throw new DeniedError(`master ${a.master}: not allowed (the configuration's parent is ${parent.name})`);
  }
  if (a.mtu !== undefined && parent.mtu !== undefined && a.mtu > parent.mtu) throw new InputError(`mtu ${a.mtu}: over the parent's (${parent.name}: ${parent.mtu})`);
  for (const text of a.assigned?.addresses ?? []) {
    const ip = text.split('/')[0]!;
    if (!subnets.some((s) => contains(s, ip))) throw new DeniedError(`address ${text} (from IPAM): not in a subnet of the configuration (${subnets.map((s) => s.text).join(', ')})`);
  }
}

/**
 * The assigned addresses and routes on link index (through nl, of its
 * namespace); record(addresses) is called before each address is added,
 * so the registry always covers what the interface has.
 */
export function addAssigned(nl: Netlink, index: number, a: Assigned, inUse: (ip: string) => boolean, record: (addresses: string[]) => void): void {
  const addresses: string[] = [];
  for (const text of a.addresses) {
    const [ip, prefix] = text.split('/') as [string, string];
    if (inUse(ip)) throw new SysError(`add ${text} (from IPAM)`, 98 /* EADDRINUSE */, 'in use by another launch or the host');
    addresses.push(text);
    record(addresses);
    addAddress(nl, index, ip, Number(prefix), parseIp(ip)!.family === AF_INET6 ? IFA_F_NODAD : 0);
  }
  for (const r of a.routes) addRoute(nl, { ...r, oif: index });
}
