// What the responder answers: a request whose client hardware address is a
// live lease's guest MAC (mktap --pool's record, `guest=`), on the
// interface it came in on (the lease's tap, routed) or the bridge the tap
// is a port of, with exactly that lease's address, gateway and MTU. The
// leases are read from the kernel's records at each answer (an rtnetlink
// dump, which needs no privilege); a stale lease (lease/stale.ts) is no
// lease. Nothing else in the packet is trusted: the address the client
// asks for only decides between ACK and NAK.
import { AF_INET, parseIp, type LinkInfo } from '@netgrant/core';
import { leasesOf, staleReason, type Lease } from '@netgrant/lease';
import { DISCOVER, REQUEST, OFFER, ACK, NAK, type Request, type Answer } from './packet.js';

/** Long leases: the address is the lease's for as long as the tap lives. */
export const LEASE_SECONDS = 7 * 86400;

export interface Found {
  lease: Lease;
  address: string;
  prefix: number;
  gateway: string;
}

/** The live lease for chaddr on ifindex (the tap itself, or its bridge), with its IPv4 address. */
export function findLease(links: LinkInfo[], ifindex: number, chaddr: string): Found | null {
  for (const l of leasesOf(links)) {
    const r = l.record;
    if (r.by !== 'mktap' || r.guest !== chaddr || !r.addrs || !r.gw) continue;
    if (l.link.index !== ifindex && l.link.master !== ifindex) continue;
    if (staleReason(l.link, r) !== null) continue;
    const i = r.addrs.findIndex((a) => parseIp(a.split('/')[0]!)?.family === AF_INET);
    if (i < 0) continue;
    const [address, prefix] = r.addrs[i]!.split('/') as [string, string];
    const gateway = r.gw[i];
    if (gateway === undefined || parseIp(gateway)?.family !== AF_INET) continue;
    return { lease: l, address, prefix: Number(prefix), gateway };
  }
  return null;
}

/** The answer to req for the lease found (null: say nothing). serverId is our address on the interface. */
export function decide(req: Request, found: Found, serverId: string, dns: string[]): Answer | null {
  const lease = { address: found.address, prefix: found.prefix, gateway: found.gateway, dns, mtu: found.lease.link.mtu ?? 1500, seconds: LEASE_SECONDS };
  if (req.type === DISCOVER) return { type: OFFER, serverId, lease };
  if (req.type !== REQUEST) return null;
  // SELECTING: another server's offer was chosen.
  if (req.serverId !== undefined && req.serverId !== serverId) return null;
  const asked = req.requested ?? (req.ciaddr !== '0.0.0.0' ? req.ciaddr : undefined);
  if (asked === found.address) return { type: ACK, serverId, lease };
  return { type: NAK, serverId };
}

/** Answers per client (MAC, lease) per second, at most: both families. */
export const ANSWERS_PER_SECOND = 10;
/** A request is first matched against the lease table read at most this long ago; an answer re-reads it. */
export const TABLE_MS = 100;

/** At most `perSecond` events per key in any one-second window. */
export class RateLimit {
  private readonly seen = new Map<string, number[]>();
  constructor(private readonly perSecond: number) {}
  allow(key: string, now = Date.now()): boolean {
    const times = (this.seen.get(key) ?? []).filter((t) => now - t < 1000);
    if (times.length >= this.perSecond) {
      this.seen.set(key, times);
      return false;
    }
    times.push(now);
    this.seen.set(key, times);
    if (this.seen.size > 4096) for (const [k, v] of this.seen) if (v.every((t) => now - t >= 1000)) this.seen.delete(k);
    return true;
  }
}
