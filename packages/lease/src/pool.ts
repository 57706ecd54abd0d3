// Address pools for leases that are not launches (mkveth's namespaces,
// mktap --pool's guests): each subnet's gateway and what it must never
// hand out, and one free address per subnet drawn with the launchers'
// allocator (launch/alloc.ts: CSPRNG, exclusions, a full subnet refused).
// What is in use is what live leases' records hold (record.ts `addrs`): the
// caller culls stale leases and draws under the lease lock, so an address
// is taken exactly while the lease that records it lives.
import { InputError, SysError, parseIp, AF_INET, AF_INET6, type AddrInfo, type LinkInfo } from '@netgrant/core';
import { ipToBig, bigToIp, contains, parseCidr, type Cidr } from './launch/cidr.js';
import { candidates } from './launch/alloc.js';
import { parseLaunchConfig, type Subnet } from './launch/conf.js';
import type { Lease } from './leases.js';

/** A routed lease's gateway when its subnet names none: the host end, link-local (Calico's). */
export const LINK_LOCAL_GATEWAY: Readonly<Record<number, string>> = { [AF_INET]: '169.254.1.1', [AF_INET6]: 'fe80::1' };

const LINK_LOCAL6 = parseCidr('fe80::/10')!;

export interface PoolPlan {
  cidr: Cidr;
  gateway: string;
  excluded: Set<bigint>;
}

const addrBig = (a: string) => ipToBig(parseIp(a)!.bytes);

/**
 * Each subnet's plan. Bridged: the gateway is the subnet's `gateway` or the
 * bridge's own address in it (an InputError if neither), and never handed
 * out. Routed (no bridge): the subnet's `gateway` or the link-local one.
 * The host's own addresses in a subnet are never handed out.
 */
export function poolPlans(subnets: readonly Subnet[], hostAddrs: readonly AddrInfo[], bridge: LinkInfo | undefined): PoolPlan[] {
  return subnets.map((s) => {
    const inSubnet = hostAddrs.filter((a) => contains(s.cidr, a.address));
    const gateway = s.gateway ?? (bridge ? inSubnet.find((a) => a.index === bridge.index)?.address : LINK_LOCAL_GATEWAY[s.cidr.family]);
    if (!gateway) throw new InputError(`${s.cidr.text}: no gateway (no address of ${bridge!.name} in it; set "gateway")`);
    const excluded = new Set(inSubnet.map((a) => addrBig(a.address)));
    if (contains(s.cidr, gateway)) excluded.add(addrBig(gateway));
    return { cidr: s.cidr, gateway, excluded };
  });
}

/**
 * One free address per plan, none that a live lease's record holds, as
 * addr/prefix: the subnet's prefix (bridged) or a host prefix (/32, /128:
 * routed). ENOSPC (exit 111) if a subnet is full.
 */
export function drawAddresses(plans: readonly PoolPlan[], live: readonly Lease[], hostPrefix: boolean): string[] {
  for (const l of live) {
    for (const a of l.record.addrs ?? []) {
      const addr = a.split('/')[0]!;
      for (const p of plans) if (contains(p.cidr, addr)) p.excluded.add(addrBig(addr));
    }
  }
  return plans.map((p) => {
    const next = candidates(p.cidr, p.excluded).next();
    if (next.done) throw new SysError(`allocate an address in ${p.cidr.text}`, 28 /* ENOSPC */, 'no free address in the subnet');
    return `${bigToIp(next.value, p.cidr.bits)}/${hostPrefix ? p.cidr.bits : p.cidr.prefix}`;
  });
}

/** A pool file (mktap --pool): subnets as the launchers list them (`CIDR [gateway IP]`), and `dns ADDR...` for the guests' DHCP. */
export interface PoolConfig {
  subnets: Subnet[];
  dns: string[];
}

/** At most this many DNS servers (DHCP option 6 carries them all in one option). */
const MAX_DNS = 8;

export function parsePoolConfig(text: string, file: string): PoolConfig {
  const dns: string[] = [];
  const base = parseLaunchConfig(text, file, [], {
    subnetOptions: ['gateway'],
    directives: {
      dns(args, where) {
        if (args.length === 0 || !args.every((a) => parseIp(a) !== null)) throw new InputError(`${where}: dns takes one or more IPv4/IPv6 addresses`);
        dns.push(...args);
        if (dns.length > MAX_DNS) throw new InputError(`${where}: at most ${MAX_DNS} dns servers`);
      },
    },
  });
  if (base.limit !== undefined) throw new InputError(`${file}: a pool has no "limit" (mktap's quota is --max-per-peer)`);
  // A guest's link-local address is its MAC's (the pin filter allows it by itself, netgrant-dhcpd takes it as the guest's identity).
  const ll = base.subnets.find((s) => contains(LINK_LOCAL6, s.cidr.text.split('/')[0]!) || contains(s.cidr, 'fe80::'));
  if (ll) throw new InputError(`${file}: ${ll.cidr.text}: link-local addresses are not handed out (a guest has its own, from its MAC)`);
  return { subnets: base.subnets, dns };
}
