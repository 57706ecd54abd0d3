// Whom the DHCPv6 responder answers, and with what. The client is the
// request's source address, never anything it writes in the message: a
// link-local fe80::/64 address whose interface id is the modified EUI-64
// of a live mktap --pool lease's guest MAC (`guest=`), arrived on that
// lease's tap (routed) or the bridge it is a port of. On a pinned lease
// that source is the guest's own: the pin program drops every IPv6 frame
// whose source MAC is not the guest's, or whose source address is neither
// one of the lease's addresses nor the EUI-64 link-local address of that
// source MAC (lease/pin/program.ts; --guest-ip and pools take no
// link-local address). The DUID a client sends (DUID-LL and DUID-LLT
// carry a MAC) is copied back, as the protocol wants, and never trusted.
import { AF_INET6, parseIp, formatMac, type LinkInfo } from '@netgrant/core';
import { leasesOf, staleReason, type Lease } from '@netgrant/lease';
import {
  SOLICIT, ADVERTISE, REQUEST, CONFIRM, RENEW, REBIND, REPLY, INFORMATION_REQUEST,
  STATUS_SUCCESS, STATUS_NOADDRSAVAIL, STATUS_NOBINDING, STATUS_NOTONLINK,
  type Request6, type Answer6, type IaAnswer,
} from './packet6.js';
import { LEASE_SECONDS } from './respond.js';

/** The MAC whose modified EUI-64 link-local address addr is (fe80::/64, ff:fe in the middle), or null. */
export function macOfLinkLocal(addr: Buffer): string | null {
  if (addr.length !== 16 || addr.readUInt32BE(0) !== 0xfe800000 || addr.readUInt32BE(4) !== 0) return null;
  if (addr[11] !== 0xff || addr[12] !== 0xfe) return null;
  const mac = Buffer.from([addr[8]! ^ 2, addr[9]!, addr[10]!, addr[13]!, addr[14]!, addr[15]!]);
  if (mac[0]! & 1 || mac.every((b) => b === 0)) return null;
  return formatMac(mac);
}

export interface Found6 {
  lease: Lease;
  /** The lease's IPv6 addresses, 16 bytes each. */
  addrs: Buffer[];
}

/** The live lease whose guest has source address src, on ifindex (its tap, or its bridge), with IPv6 addresses. */
export function findLease6(links: LinkInfo[], ifindex: number, src: Buffer): Found6 | null {
  const mac = macOfLinkLocal(src);
  if (!mac) return null;
  for (const l of leasesOf(links)) {
    const r = l.record;
    if (r.by !== 'mktap' || r.guest !== mac || !r.addrs) continue;
    if (l.link.index !== ifindex && l.link.master !== ifindex) continue;
    const addrs = r.addrs.map((a) => parseIp(a.split('/')[0]!)).flatMap((ip) => (ip?.family === AF_INET6 ? [ip.bytes] : []));
    if (!addrs.length || staleReason(l.link, r) !== null) continue;
    return { lease: l, addrs };
  }
  return null;
}

/** The interfaces a lease with IPv6 addresses may ask on: its tap (routed) or its bridge. */
export function servedInterfaces(links: LinkInfo[]): Set<number> {
  const out = new Set<number>();
  for (const l of leasesOf(links)) {
    const r = l.record;
    if (r.by !== 'mktap' || !r.guest || !r.addrs?.some((a) => parseIp(a.split('/')[0]!)?.family === AF_INET6)) continue;
    out.add(l.link.master ?? l.link.index);
  }
  return out;
}

/** DUID-LL (type 3, hardware type 1: Ethernet) of a MAC. */
export function duidLl(mac: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0, 3, 0, 1]), mac]);
}

/**
 * The answer to req for the lease found (null: say nothing). The first
 * IA_NA gets every IPv6 address of the lease; any other IA_NA gets none
 * (NoAddrsAvail when offered, NoBinding when renewed), and addresses a
 * client renews that are not the lease's come back with lifetimes 0.
 */
export function decide6(req: Request6, found: Found6, serverId: Buffer, dns: Buffer[]): Answer6 | null {
  const base = { serverId, ias: [] as IaAnswer[], rapidCommit: false, preference: false, dns };
  const reply = (ias: IaAnswer[], extra: Partial<Answer6> = {}): Answer6 => ({ ...base, type: REPLY, ias, ...extra });
  if (req.serverId && !req.serverId.equals(serverId)) return null;
  const leased = (a: Buffer) => found.addrs.some((x) => x.equals(a));
  const T1 = LEASE_SECONDS / 2;
  const T2 = (LEASE_SECONDS * 4) / 5;
  const ias = (otherwise: number): IaAnswer[] =>
    req.iaNa.map((ia, i) => {
      const gone = ia.addrs.filter((a) => !leased(a)).map((addr) => ({ addr, preferred: 0, valid: 0 }));
      if (i > 0) return { iaid: ia.iaid, t1: 0, t2: 0, addrs: gone, status: otherwise };
      return { iaid: ia.iaid, t1: T1, t2: T2, addrs: [...found.addrs.map((addr) => ({ addr, preferred: LEASE_SECONDS, valid: LEASE_SECONDS })), ...gone] };
    });
  switch (req.type) {
    case SOLICIT:
      if (!req.iaNa.length) return null;
      if (req.rapidCommit) return reply(ias(STATUS_NOADDRSAVAIL), { rapidCommit: true });
      return { ...base, type: ADVERTISE, ias: ias(STATUS_NOADDRSAVAIL), preference: true };
    case REQUEST:
      if (!req.iaNa.length) return null;
      return reply(ias(STATUS_NOADDRSAVAIL));
    case RENEW:
    case REBIND:
      if (!req.iaNa.length) return null;
      return reply(ias(STATUS_NOBINDING));
    case CONFIRM: {
      // RFC 8415 §18.3.3: no addresses, no answer; else on-link exactly when every one is the lease's.
      const named = req.iaNa.flatMap((ia) => ia.addrs);
      if (!named.length) return null;
      return reply([], { status: named.every(leased) ? STATUS_SUCCESS : STATUS_NOTONLINK });
    }
    case INFORMATION_REQUEST:
      return reply([]);
    default:
      return null;
  }
}
