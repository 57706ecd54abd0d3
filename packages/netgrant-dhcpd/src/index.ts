// netgrant-dhcpd: a DHCPv4 (or, with -6, DHCPv6: serve6.ts) responder with no CAP_NET_RAW (KubeVirt's
// technique): one UDP socket on port 67 with IP_PKTINFO and SO_BROADCAST
// tells which interface a request came in on, and sends the answer out of
// it, to the limited broadcast address or the renewing client. It answers
// only the guest MAC of a live mktap --pool lease on that interface (or
// its bridge), with that lease's address, router, classless routes, DNS
// and MTU; everything else gets no answer.
import { UsageError, InputError, openTrustedFile, optFlag, optString, udpPktinfoSocket, recvPktinfo, sendPktinfo, withNetlink, dumpLinks, say, type Program } from '@netgrant/core';
import { currentNetnsTrusted, parsePoolConfig } from '@netgrant/lease';
import { closeSync, writeSync } from 'node:fs';
import { parseRequest, buildAnswer, REQUEST, NAK } from './packet.js';
import { findLease, decide, RateLimit, ANSWERS_PER_SECOND, TABLE_MS } from './respond.js';
import { serve6 } from './serve6.js';

const NAME = 'netgrant-dhcpd';
const PORT = 67;

/** A server DUID as the administrator writes it: hex, colons allowed; 2 bytes of type and 1 to 128 more (RFC 8415 §11.1). */
function parseDuid(text: string): Buffer {
  const hex = text.replace(/:/g, '');
  const b = /^([0-9a-fA-F]{2}){3,130}$/.test(hex) ? Buffer.from(hex, 'hex') : null;
  if (!b) throw new UsageError(`-D: not a DUID (3 to 130 bytes in hex): ${JSON.stringify(text)}`);
  return b;
}

export const program: Program = {
  name: NAME,
  usage: '[-6 [-D DUID]] [-c POOL] [-1] [-v]',
  options: [
    { name: 'ipv6', short: '6' },
    { name: 'duid', short: 'D', value: true },
    { name: 'config', short: 'c', value: true },
    { name: 'ready', short: '1' },
    { name: 'verbose', short: 'v' },
  ],
  run(chain, opts) {
    const verbose = optFlag(opts, 'verbose');
    const poolPath = optString(opts, 'config');
    let dns: string[] = [];
    if (poolPath !== undefined) {
      const file = openTrustedFile(poolPath, { sameFilesystemAs: process.argv[1] ?? '/' });
      closeSync(file.fd);
      dns = parsePoolConfig(file.text, poolPath).dns;
    }
    if (chain.rest.length) throw new UsageError('a responder runs for ever and takes no program');
    // Records are the truth only where no user can write them.
    if (!currentNetnsTrusted()) throw new InputError('this network namespace is owned by a user namespace of its own: its lease records are forgeable');
    const duidText = optString(opts, 'duid');
    if (optFlag(opts, 'ipv6')) {
      const duid = duidText === undefined ? undefined : parseDuid(duidText);
      const ready = optFlag(opts, 'ready');
      return serve6({ name: NAME, verbose, dns, duid, ready: () => void (ready && writeSync(1, '\n')) });
    }
    if (duidText !== undefined) throw new UsageError('-D is a DHCPv6 server id: it needs -6');
    const fd = udpPktinfoSocket(PORT);
    if (optFlag(opts, 'ready')) writeSync(1, '\n');
    const perMac = new RateLimit(ANSWERS_PER_SECOND);
    const read = () => withNetlink((nl) => dumpLinks(nl));
    let table = read();
    let readAt = Date.now();
    for (;;) {
      const dg = recvPktinfo(fd, 1500);
      if (!dg || dg.truncated || dg.from.port !== 68) continue;
      const req = parseRequest(dg.data);
      if (!req || dg.local === '0.0.0.0') continue;
      // A flood costs a parse and a lookup per datagram, and a table read per TABLE_MS.
      if (Date.now() - readAt >= TABLE_MS) {
        table = read();
        readAt = Date.now();
      }
      const cached = findLease(table, dg.ifindex, req.chaddr);
      if (!cached || !decide(req, cached, dg.local, dns) || !perMac.allow(req.chaddr)) continue;
      // The kernel's records now: the lease must still hold as the answer goes out.
      table = read();
      readAt = Date.now();
      const found = findLease(table, dg.ifindex, req.chaddr);
      const answer = found && decide(req, found, dg.local, dns);
      if (!found || !answer) continue;
      const unicast = answer.type !== NAK && req.type === REQUEST && req.ciaddr === found.address;
      try {
        sendPktinfo(fd, buildAnswer(req, answer), { addr: unicast ? req.ciaddr : '255.255.255.255', port: 68 }, dg.ifindex, dg.local);
        if (verbose) say(NAME, 'info', `${['', '', 'OFFER', '', '', 'ACK', 'NAK'][answer.type]} ${found.address} to ${req.chaddr} on ${found.lease.link.name}`);
      } catch (e) {
        say(NAME, 'warning', e instanceof Error ? e.message : String(e));
      }
    }
  },
};
