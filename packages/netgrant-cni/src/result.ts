// The ADD result (SPEC §5): interfaces (the host end without a sandbox,
// the container's with CNI_NETNS), ips pointing at the container's
// interface, default routes via the gateways, an empty dns. 0.3.x and
// 0.4.0 results carry ips[].version (1.0.0 removed it). A prevResult from
// an earlier plugin of the chain is extended, its interfaces first.
import { formatMac, parseIp, AF_INET } from '@netgrant/core';

export interface Attached {
  hostIf: string;
  /** Unknown when a service made it (rootless). */
  hostMac: Buffer | undefined;
  ifname: string;
  mac: Buffer;
  netns: string;
  /** addr/prefix. */
  addresses: string[];
  /** One per address, '' for none. */
  gateways: string[];
  /** The result's routes, if not a default route via each gateway (delegated IPAM's, ipvlan l3's). */
  routes?: Json[];
  /** Delegated IPAM's. */
  dns?: Json;
}

type Json = Record<string, unknown>;

const listOf = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : []);

export function addResult(cniVersion: string, a: Attached, prev?: Json): Json {
  const old = cniVersion.startsWith('0.');
  const prevIfs = listOf(prev?.interfaces);
  // A host end (veth) comes first; a macvlan or ipvlan has none.
  const host = a.hostIf ? [{ name: a.hostIf, ...(a.hostMac ? { mac: formatMac(a.hostMac) } : {}) }] : [];
  const inside = prevIfs.length + host.length;
  const v4 = (addr: string) => parseIp(addr.split('/')[0]!)!.family === AF_INET;
  return {
    cniVersion,
    interfaces: [...prevIfs, ...host, { name: a.ifname, mac: formatMac(a.mac), sandbox: a.netns }],
    ips: [
      ...listOf(prev?.ips),
      ...a.addresses.map((address, i) => ({ ...(old ? { version: v4(address) ? '4' : '6' } : {}), address, ...(a.gateways[i] ? { gateway: a.gateways[i] } : {}), interface: inside })),
    ],
    routes: [...listOf(prev?.routes), ...(a.routes ?? a.addresses.map((address, i) => ({ dst: v4(address) ? '0.0.0.0/0' : '::/0', gw: a.gateways[i] })))],
    dns: a.dns ?? (prev?.dns as Json | undefined) ?? {},
  };
}
