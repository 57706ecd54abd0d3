// The DHCPv6 responder's loop (netgrant-dhcpd -6), on the event loop: one
// UDP socket on [::]:547 with IPV6_RECVPKTINFO, joined to
// All_DHCP_Relay_Agents_and_Servers (ff02::1:2) on every interface a lease
// with IPv6 addresses may ask on (its tap, or its bridge), kept in step
// with the kernel by rtnetlink link notifications. A datagram is looked at
// only if it came from port 546 of a link-local address on the interface
// it arrived on, to ff02::1:2; the answer goes back to that address out of
// that interface, from the interface's own link-local address.
import { Netlink, RTMGRP_LINK, dumpLinks, joinGroup6, leaveGroup6, recvPktinfo6, sendPktinfo6, udp6PktinfoSocket, watchReadable, parseIp, say, withNetlink } from '@netgrant/core';
import { parseRequest6, buildAnswer6, ADVERTISE } from './packet6.js';
import { findLease6, servedInterfaces, decide6, duidLl } from './respond6.js';
import { RateLimit, ANSWERS_PER_SECOND, TABLE_MS } from './respond.js';

const PORT = 547;
const CLIENT_PORT = 546;
const GROUP = 'ff02::1:2';
/** Datagrams handled per turn of the event loop (the rest wait for the next). */
const BURST = 64;

export interface Serve6Options {
  name: string;
  verbose: boolean;
  /** The pool's IPv6 DNS servers. */
  dns: string[];
  /** The server DUID (--duid); undefined: DUID-LL of the arrival interface's MAC. */
  duid: Buffer | undefined;
  /** Called once the socket listens and the groups are joined. */
  ready: () => void;
}

export function serve6(o: Serve6Options): Promise<never> {
  const fd = udp6PktinfoSocket(PORT);
  const events = Netlink.open(RTMGRP_LINK);
  const dns = o.dns.flatMap((d) => {
    const ip = parseIp(d);
    return ip?.bytes.length === 16 ? [ip.bytes] : [];
  });
  const warn = (e: unknown) => say(o.name, 'warning', e instanceof Error ? e.message : String(e));
  const joined = new Set<number>();
  /** Interfaces a join failed on (said once with -v; tried again at every refresh). */
  const refused = new Set<number>();
  const read = () => withNetlink((nl) => dumpLinks(nl));
  let table = read();
  let readAt = Date.now();
  /** Join ff02::1:2 where leases may ask, leave where none may any more. */
  const sync = () => {
    const want = servedInterfaces(table);
    for (const i of want) {
      if (joined.has(i)) continue;
      try {
        joinGroup6(fd, GROUP, i);
        joined.add(i);
        refused.delete(i);
      } catch (e) {
        // IPv6 off there, or the link already gone: tried again at the next refresh.
        if (o.verbose && !refused.has(i)) warn(e);
        refused.add(i);
      }
    }
    for (const i of refused) if (!want.has(i)) refused.delete(i);
    for (const i of joined) {
      if (want.has(i)) continue;
      joined.delete(i);
      try {
        leaveGroup6(fd, GROUP, i);
      } catch {
        // gone with its interface
      }
    }
  };
  const refresh = () => {
    table = read();
    readAt = Date.now();
    sync();
  };
  sync();
  const perLease = new RateLimit(ANSWERS_PER_SECOND);

  const handle = (): boolean => {
    const dg = recvPktinfo6(fd, MAX_DATAGRAM);
    if (dg === undefined) return false;
    if (!dg || dg.truncated || dg.from.port !== CLIENT_PORT || dg.to !== GROUP || dg.from.scope !== dg.ifindex) return true;
    const req = parseRequest6(dg.data);
    if (!req) return true;
    const src = parseIp(dg.from.addr)!.bytes;
    // A flood costs a parse and a lookup per datagram, and a table read per TABLE_MS.
    if (Date.now() - readAt >= TABLE_MS) refresh();
    const cached = findLease6(table, dg.ifindex, src);
    if (!cached || !perLease.allow(cached.lease.record.guest!)) return true;
    // The kernel's records now: the lease must still hold as the answer goes out.
    refresh();
    const found = findLease6(table, dg.ifindex, src);
    const via = table.find((l) => l.index === dg.ifindex);
    const serverId = o.duid ?? (via?.mac?.length === 6 ? duidLl(via.mac) : undefined);
    if (!found || !serverId) return true;
    const answer = decide6(req, found, serverId, dns);
    if (!answer) return true;
    try {
      sendPktinfo6(fd, buildAnswer6(req, answer), { addr: dg.from.addr, port: CLIENT_PORT }, dg.ifindex);
      if (o.verbose) say(o.name, 'info', `${answer.type === ADVERTISE ? 'ADVERTISE' : 'REPLY'} to ${TYPE_NAMES[req.type]} ${answer.ias[0]?.addrs.length ? `${answer.ias[0].addrs.filter((a) => a.valid).length} address(es) ` : ''}to ${dg.from.addr} on ${found.lease.link.name}`);
    } catch (e) {
      warn(e);
    }
    return true;
  };

  watchReadable(fd, () => {
    try {
      for (let i = 0; i < BURST && handle(); i++);
    } catch (e) {
      warn(e);
    }
  });
  watchReadable(events.fd, () => {
    try {
      events.notifications(); // what changed is read from a dump; an overflow (ENOBUFS) is covered by it too
      refresh();
    } catch (e) {
      warn(e);
    }
  });
  o.ready();
  return new Promise<never>(() => undefined);
}

/** The receive buffer: anything longer than a message may be (packet6.ts MAX_MESSAGE) comes in truncated and is dropped. */
const MAX_DATAGRAM = 1500;

const TYPE_NAMES: Record<number, string> = { 1: 'SOLICIT', 3: 'REQUEST', 4: 'CONFIRM', 5: 'RENEW', 6: 'REBIND', 11: 'INFORMATION-REQUEST' };
