// Ethernet frames for the pinning tests, built byte by byte from the wire
// formats (RFC 826, 791, 768, 8200, 4443, 4861, 3810), independently of the
// code under test.
import { parseIp } from '@netgrant/core';

export const BROADCAST = Buffer.from('ffffffffffff', 'hex');
export const mac = (s: string): Buffer => Buffer.from(s.replace(/:/g, ''), 'hex');
export const ip = (s: string): Buffer => {
  const p = parseIp(s);
  if (!p) throw new Error(`bad address ${s}`);
  return p.bytes;
};

export function eth(dst: Buffer, src: Buffer, type: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(14);
  dst.copy(h, 0);
  src.copy(h, 6);
  h.writeUInt16BE(type, 12);
  return Buffer.concat([h, payload]);
}

/** An 802.1Q (or 802.1ad) tag inserted after the MAC addresses of frame. */
export function vlanTag(frame: Buffer, vid: number, tpid = 0x8100): Buffer {
  const t = Buffer.alloc(4);
  t.writeUInt16BE(tpid, 0);
  t.writeUInt16BE(vid & 0xfff, 2);
  return Buffer.concat([frame.subarray(0, 12), t, frame.subarray(12)]);
}

export function arp(o: { op: 1 | 2; sha: Buffer; spa: string; tha?: Buffer; tpa: string }): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt16BE(1, 0); // Ethernet
  b.writeUInt16BE(0x0800, 2);
  b[4] = 6;
  b[5] = 4;
  b.writeUInt16BE(o.op, 6);
  o.sha.copy(b, 8);
  ip(o.spa).copy(b, 14);
  (o.tha ?? Buffer.alloc(6)).copy(b, 18);
  ip(o.tpa).copy(b, 24);
  return b;
}

function csum(...parts: Buffer[]): number {
  const b = Buffer.concat(parts);
  let s = 0;
  for (let i = 0; i + 1 < b.length; i += 2) s += b.readUInt16BE(i);
  if (b.length % 2) s += b[b.length - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

export function ipv4(o: { src: string; dst: string; proto: number; payload: Buffer; id?: number; fragOff?: number; moreFrags?: boolean }): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + o.payload.length, 2);
  h.writeUInt16BE(o.id ?? 1, 4);
  h.writeUInt16BE(((o.moreFrags ? 1 : 0) << 13) | ((o.fragOff ?? 0) >> 3), 6);
  h[8] = 64;
  h[9] = o.proto;
  ip(o.src).copy(h, 12);
  ip(o.dst).copy(h, 16);
  h.writeUInt16BE(csum(h), 10);
  return Buffer.concat([h, o.payload]);
}

export function udp(sport: number, dport: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([h, payload]); // checksum 0: none (IPv4), the bridge does not check (IPv6)
}

export function icmpEcho(id: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h[0] = 8;
  h.writeUInt16BE(id, 4);
  h.writeUInt16BE(1, 6);
  const b = Buffer.concat([h, payload]);
  b.writeUInt16BE(csum(b), 2);
  return b;
}

export function ipv6(o: { src: string; dst: string; nh: number; payload: Buffer; hopLimit?: number }): Buffer {
  const h = Buffer.alloc(40);
  h.writeUInt32BE(0x60000000, 0);
  h.writeUInt16BE(o.payload.length, 4);
  h[6] = o.nh;
  h[7] = o.hopLimit ?? 64;
  ip(o.src).copy(h, 8);
  ip(o.dst).copy(h, 24);
  const payload = Buffer.from(o.payload);
  // ICMPv6 (directly or after one hop-by-hop header) gets its checksum: the
  // bridge's MLD snooping checks it, and drops a report whose sum is wrong.
  const at = o.nh === 58 ? 0 : o.nh === 0 && payload[0] === 58 ? 8 * (payload[1]! + 1) : -1;
  if (at >= 0 && payload.length >= at + 4) {
    const msg = payload.subarray(at);
    msg.writeUInt16BE(0, 2);
    const pseudo = Buffer.alloc(40);
    ip(o.src).copy(pseudo, 0);
    ip(o.dst).copy(pseudo, 16);
    pseudo.writeUInt32BE(msg.length, 32);
    pseudo[39] = 58;
    msg.writeUInt16BE(csum(pseudo, msg), 2);
  }
  return Buffer.concat([h, payload]);
}

/** An ICMPv6 message (ipv6() fills in the checksum). */
export function icmp6(type: number, code: number, body: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h[0] = type;
  h[1] = code;
  return Buffer.concat([h, body]);
}

/** A link-layer address option (1 source, 2 target). */
export function llaOpt(type: 1 | 2, m: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type, 1]), m]);
}

/** Neighbour solicitation (135) or advertisement (136) body: 4 bytes of reserved/flags, target, options. */
export function nd(type: 135 | 136, target: string, opt?: Buffer): Buffer {
  const flags = Buffer.alloc(4);
  if (type === 136) flags[0] = 0x20; // override
  return icmp6(type, 0, Buffer.concat([flags, ip(target), opt ?? Buffer.alloc(0)]));
}

/** A router advertisement: hop limit, flags, lifetime 1800, reachable, retrans. */
export const ra = (): Buffer => icmp6(134, 0, Buffer.from('4000070800000000' + '00000000', 'hex'));

/** An MLDv2 report (143) for one group, behind the hop-by-hop router-alert header it travels with. */
export function mldReportHbh(group: string): { nh: number; payload: Buffer } {
  const rec = Buffer.concat([Buffer.from([4, 0, 0, 0]), ip(group)]); // CHANGE_TO_EXCLUDE, no sources
  const mld = icmp6(143, 0, Buffer.concat([Buffer.from([0, 0, 0, 1]), rec]));
  const hbh = Buffer.from([58, 0, 5, 2, 0, 0, 1, 0]); // next ICMPv6, len 0, router alert (MLD), PadN
  return { nh: 0, payload: Buffer.concat([hbh, mld]) };
}

/** The EUI-64 link-local address of a MAC (RFC 4291 appendix A). */
export function lla(m: Buffer): string {
  const id = [m[0]! ^ 2, m[1]!, m[2]!, 0xff, 0xfe, m[3]!, m[4]!, m[5]!];
  const g = (i: number) => ((id[i]! << 8) | id[i + 1]!).toString(16);
  return `fe80::${g(0)}:${g(2)}:${g(4)}:${g(6)}`;
}

/** The solicited-node multicast address of addr. */
export function solicitedNode(addr: string): string {
  const b = ip(addr);
  return `ff02::1:ff${b[13]!.toString(16).padStart(2, '0')}:${((b[14]! << 8) | b[15]!).toString(16)}`;
}

/** The multicast MAC of an IPv6 multicast group. */
export function mcastMac(group: string): Buffer {
  const b = ip(group);
  return Buffer.from([0x33, 0x33, b[12]!, b[13]!, b[14]!, b[15]!]);
}
