// The per-lease rule set as one eBPF program (BPF_PROG_TYPE_SCHED_CLS, tc
// direct action) run on every frame the guest sends. The rules are written
// out in docs/security.md ("Per-lease filters"); in short, a frame passes
// only if
//   - it carries no VLAN tag (in the frame or in the skb's metadata) and its
//     source MAC is the guest's (in learn mode: the first unicast source MAC
//     seen, stored once with an atomic compare-and-swap);
//   - it is ARP, IPv4 or IPv6;
//   - ARP: Ethernet/IPv4 sizes, sender MAC = source MAC, sender IP pinned
//     (or 0.0.0.0 in a request: an RFC 5227 probe);
//   - IPv4: source pinned (non-first fragments then pass, having no L4
//     header), or 0.0.0.0 in an unfragmented UDP 68 -> 255.255.255.255:67;
//     never UDP from port 67; UDP to port 67 (a DHCP request) only
//     unfragmented and with chaddr = source MAC, so that a DHCP server may
//     trust chaddr as the frame's source (netgrant-dhcpd);
//   - IPv6: next header TCP, UDP, ICMPv6 or none, or one hop-by-hop header
//     before an ICMPv6 MLD message (every other extension header is
//     dropped); source pinned or the EUI-64 link-local address of the
//     source MAC, or :: to a multicast address in a neighbour solicitation
//     (DAD) or an MLD report; never UDP from port 547, a router
//     advertisement or a redirect; a neighbour advertisement's target must
//     be pinned or the link-local address, and the first option of a
//     solicitation or advertisement, if a link-layer address, must be the
//     source MAC.
// Every header the rules read is copied with bpf_skb_load_bytes (which also
// works on non-linear skbs); a frame too short for it is dropped.
import {
  Asm, FP, R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, BPF_FUNC, TC_ACT_SHOT, TC_ACT_UNSPEC, type Operand, type Reg,
} from '@netgrant/core';
import type { PinRules } from './spec.js';

// Stack layout (offsets from the frame pointer; the verifier wants every
// stack access naturally aligned, so each area starts 8-aligned and the
// fields read from it sit at aligned offsets).
const KEY = -8; // u32 map key
const IID = -16; // u64: the EUI-64 interface id of the source MAC, as it sits in memory
const ETH = -64; // 14 bytes
const L3 = -128; // up to 40 bytes: ARP body, IPv4 or IPv6 header
const L4 = -176; // up to 32 bytes: UDP ports, ICMPv6 header and its first option
const EXT = -184; // 2 bytes: a hop-by-hop header's next header and length
const DHCP = -192; // 8 bytes: a DHCP request's last 2 bytes of giaddr, then chaddr (so chaddr's halves sit aligned)

const ETH_HLEN = 14;
const IPV6_L4 = ETH_HLEN + 40;

/** The learned-MAC map's value: the MAC in its low 48 bits, bit 48 set, so that 0 means "not learned yet". */
export const LEARNED = 1n << 48n;

/** A value as the little-endian load of its big-endian bytes sees it (16 bits). */
const be16 = (v: number): number => ((v & 0xff) << 8) | ((v >> 8) & 0xff);
/** The little-endian u32 at off in b. */
const le32 = (b: Buffer, off = 0): number => b.readUInt32LE(off);
const le64 = (b: Buffer, off: number): bigint => b.readBigUInt64LE(off);
/** A MAC as r7 holds it: its bytes as a little-endian 48-bit number. */
export const macValue = (mac: Buffer): bigint => BigInt(mac.readUIntLE(0, 6));

/**
 * The program's instructions for these rules. mapFd is the learned-MAC
 * array map (one u64 entry) when rules.mac is null (learn), else unused.
 */
export function pinProgram(rules: PinRules, mapFd: number | null): Buffer {
  const a = new Asm();
  let n = 0;
  const fresh = (p: string): string => `${p}_${n++}`;

  /** Copy len packet bytes at off (number, or a register other than r1-r4) to the stack at to; on failure goto fail. */
  const load = (off: Operand, to: number, len: number, fail = 'drop'): void => {
    a.mov64(R2, off);
    a.mov64(R1, R6);
    a.mov64(R3, FP).alu64('add', R3, to);
    a.mov64(R4, len);
    a.call(BPF_FUNC.skb_load_bytes);
    a.jmp('jne', R0, 0, fail);
  };
  /** Jump to target if the two DWs at [FP+off], [FP+off+8] are a pinned IPv6 address or the link-local one. */
  const v6Pinned = (off: number, target: string): void => {
    a.ldx('dw', R2, FP, off).ldx('dw', R3, FP, off + 8);
    for (const ip of rules.v6) {
      const next = fresh('v6next');
      a.ldImm64(R4, le64(ip, 0)).jmp('jne', R2, R4, next);
      a.ldImm64(R4, le64(ip, 8)).jmp('jeq', R3, R4, target);
      a.label(next);
    }
    const notLla = fresh('notlla');
    a.jmp('jne', R2, 0x80fe /* fe80:0:0:0 */, notLla);
    a.ldx('dw', R4, FP, IID).jmp('jeq', R3, R4, target);
    a.label(notLla);
  };

  /** dst = the MAC whose 6 bytes sit at [FP+off] (off 2 mod 4, so both loads are aligned), as r7 holds one; tmp is clobbered. */
  const mac48 = (dst: Reg, tmp: Reg, off: number): void => {
    a.ldx('h', dst, FP, off).ldx('w', tmp, FP, off + 2).alu64('lsh', tmp, 16).alu64('or', dst, tmp);
  };

  a.mov64(R6, R1);
  // A tag the kernel moved into the skb's metadata (tap ingress untags): drop.
  a.ldx('w', R2, R6, 20 /* __sk_buff.vlan_present */).jmp('jne', R2, 0, 'drop');
  load(0, ETH, ETH_HLEN);
  // r7 = source MAC; multicast (incl. broadcast) and zero sources are never a guest's.
  mac48(R7, R2, ETH + 6);
  a.jmp('jset', R7, 1, 'drop').jmp('jeq', R7, 0, 'drop');
  if (rules.mac) {
    a.ldImm64(R2, macValue(rules.mac)).jmp('jne', R7, R2, 'drop');
  } else {
    if (mapFd === null) throw new RangeError('pin program: learn mode needs its map');
    a.st('w', FP, KEY, 0);
    a.ldMapFd(R1, mapFd);
    a.mov64(R2, FP).alu64('add', R2, KEY);
    a.call(BPF_FUNC.map_lookup_elem);
    a.jmp('jeq', R0, 0, 'drop');
    a.mov64(R1, R0);
    a.ldImm64(R8, LEARNED).alu64('or', R8, R7);
    a.ldx('dw', R2, R1, 0).jmp('jeq', R2, R8, 'mac_ok').jmp('jne', R2, 0, 'drop');
    // Not learned yet: claim it, unless another CPU just did.
    a.mov64(R0, 0).cmpxchg('dw', R1, 0, R8);
    a.jmp('jeq', R0, 0, 'mac_ok').jmp('jeq', R0, R8, 'mac_ok').ja('drop');
  }
  a.label('mac_ok');
  a.ldx('h', R2, FP, ETH + 12);
  a.jmp('jeq', R2, be16(0x0806), 'arp');
  a.jmp('jeq', R2, be16(0x0800), 'ipv4');
  a.jmp('jeq', R2, be16(0x86dd), 'ipv6');
  a.ja('drop');

  // ARP: htype 1, ptype IPv4, hlen 6, plen 4; sha = source MAC; spa pinned, or 0 in a request (probe).
  a.label('arp');
  load(ETH_HLEN, L3, 28);
  a.ldx('h', R2, FP, L3 + 0).jmp('jne', R2, be16(1), 'drop');
  a.ldx('h', R2, FP, L3 + 2).jmp('jne', R2, be16(0x0800), 'drop');
  a.ldx('h', R2, FP, L3 + 4).jmp('jne', R2, be16(0x0604), 'drop');
  a.ldx('w', R2, FP, L3 + 8).ldx('h', R3, FP, L3 + 12).alu64('lsh', R3, 32).alu64('or', R2, R3).jmp('jne', R2, R7, 'drop');
  a.ldx('h', R2, FP, L3 + 14).ldx('h', R3, FP, L3 + 16).alu64('lsh', R3, 16).alu64('or', R2, R3);
  for (const ip of rules.v4) a.jmp32('jeq', R2, le32(ip), 'pass');
  a.jmp('jne', R2, 0, 'drop');
  a.ldx('h', R3, FP, L3 + 6).jmp('jeq', R3, be16(1), 'pass');
  a.ja('drop');

  // IPv4.
  a.label('ipv4');
  load(ETH_HLEN, L3, 20);
  a.ldx('b', R2, FP, L3 + 0);
  a.mov64(R3, R2).alu64('rsh', R3, 4).jmp('jne', R3, 4, 'drop');
  a.alu64('and', R2, 0xf).jmp('jlt', R2, 5, 'drop');
  a.alu64('lsh', R2, 2).alu64('add', R2, ETH_HLEN).mov64(R8, R2); // r8 = L4 offset
  a.ldx('b', R9, FP, L3 + 9); // r9 = protocol
  a.ldx('w', R2, FP, L3 + 12);
  for (const ip of rules.v4) a.jmp32('jeq', R2, le32(ip), 'v4_pinned');
  a.jmp('jeq', R2, 0, 'v4_unspec');
  a.ja('drop');
  if (rules.v4.length) {
    // (Emitted only when something jumps here: the verifier refuses unreachable code.)
    a.label('v4_pinned');
    // A non-first fragment has no L4 header to check; its source is pinned.
    a.ldx('h', R2, FP, L3 + 6).jmp('jset', R2, be16(0x1fff), 'pass');
    a.jmp('jne', R9, 17, 'pass');
    load(R8, L4, 4);
    a.ldx('h', R2, FP, L4 + 0).jmp('jeq', R2, be16(67), 'drop');
    a.ldx('h', R2, FP, L4 + 2).jmp('jne', R2, be16(67), 'pass');
    // A DHCP request: whole (a fragment could carry chaddr past this check).
    a.ldx('h', R2, FP, L3 + 6).jmp('jset', R2, be16(0x2000), 'drop');
    a.ja('dhcp_chaddr');
  }
  a.label('v4_unspec');
  // 0.0.0.0: only a whole DHCP client message, UDP 68 -> 255.255.255.255:67.
  a.ldx('h', R2, FP, L3 + 6).jmp('jset', R2, be16(0x3fff), 'drop');
  a.jmp('jne', R9, 17, 'drop');
  a.ldx('w', R2, FP, L3 + 16).jmp32('jne', R2, 0xffffffff, 'drop');
  load(R8, L4, 4);
  const dhcpPorts = Buffer.from([0, 68, 0, 67]);
  a.ldx('w', R2, FP, L4 + 0).jmp32('jne', R2, le32(dhcpPorts), 'drop');
  // A DHCP request's chaddr (UDP payload offset 28) must be the source MAC.
  a.label('dhcp_chaddr');
  a.mov64(R9, R8).alu64('add', R9, 8 + 26);
  load(R9, DHCP, 8);
  mac48(R2, R3, DHCP + 2);
  a.jmp('jne', R2, R7, 'drop');
  a.ja('pass');

  // IPv6.
  a.label('ipv6');
  load(ETH_HLEN, L3, 40);
  a.ldx('b', R2, FP, L3 + 0).alu64('rsh', R2, 4).jmp('jne', R2, 6, 'drop');
  // The EUI-64 link-local interface id of the source MAC, bytes (m0^2) m1 m2 ff fe m3 m4 m5.
  a.mov64(R4, R7).alu64('and', R4, 0xffffff);
  a.mov64(R5, R7).alu64('rsh', R5, 24).alu64('lsh', R5, 40).alu64('or', R4, R5);
  a.ldImm64(R5, 0xfeff000000n).alu64('or', R4, R5).alu64('xor', R4, 2);
  a.stx('dw', FP, IID, R4);
  a.ldx('b', R9, FP, L3 + 6); // r9 = next header
  a.mov64(R8, IPV6_L4); // r8 = L4 offset
  a.jmp('jne', R9, 0, 'v6_plain');
  // One hop-by-hop header, allowed only before an ICMPv6 MLD message.
  load(IPV6_L4, EXT, 2);
  a.ldx('b', R9, FP, EXT + 0).jmp('jne', R9, 58, 'drop');
  a.ldx('b', R2, FP, EXT + 1).alu64('add', R2, 1).alu64('lsh', R2, 3).alu64('add', R2, IPV6_L4).mov64(R8, R2);
  load(R8, L4, 4);
  a.ldx('b', R2, FP, L4 + 0);
  for (const t of [130, 131, 132, 143]) a.jmp('jeq', R2, t, 'v6_src');
  a.ja('drop');
  a.label('v6_plain');
  for (const nh of [6, 17, 58, 59]) a.jmp('jeq', R9, nh, 'v6_src');
  a.ja('drop');
  a.label('v6_src');
  v6Pinned(L3 + 8, 'v6_ok');
  // ::, only to a multicast address, in a neighbour solicitation (DAD) or an MLD report.
  a.ldx('dw', R2, FP, L3 + 8).jmp('jne', R2, 0, 'drop');
  a.ldx('dw', R2, FP, L3 + 16).jmp('jne', R2, 0, 'drop');
  a.ldx('b', R2, FP, L3 + 24).jmp('jne', R2, 0xff, 'drop');
  a.jmp('jne', R9, 58, 'drop');
  load(R8, L4, 4);
  a.ldx('b', R2, FP, L4 + 0);
  for (const t of [135, 131, 143]) a.jmp('jeq', R2, t, 'v6_ok');
  a.ja('drop');
  a.label('v6_ok');
  a.jmp('jeq', R9, 17, 'v6_udp');
  a.jmp('jeq', R9, 58, 'v6_icmp');
  a.ja('pass');
  a.label('v6_udp');
  load(R8, L4, 4);
  a.ldx('h', R2, FP, L4 + 0).jmp('jeq', R2, be16(547), 'drop');
  a.ja('pass');
  a.label('v6_icmp');
  load(R8, L4, 4);
  a.ldx('b', R2, FP, L4 + 0);
  a.jmp('jeq', R2, 134, 'drop'); // router advertisement
  a.jmp('jeq', R2, 137, 'drop'); // redirect
  a.jmp('jeq', R2, 135, 'nd_opt');
  a.jmp('jne', R2, 136, 'pass');
  // Neighbour advertisement: the target must be one of the guest's addresses.
  load(R8, L4, 24);
  v6Pinned(L4 + 8, 'nd_opt');
  a.ja('drop');
  a.label('nd_opt');
  // NS/NA: a first option that is a link-layer address (source 1, target 2) must be the source MAC.
  load(R8, L4, 32, 'pass'); // no room for an option: nothing to check
  a.ldx('b', R2, FP, L4 + 24);
  a.jmp('jeq', R2, 1, 'nd_lla').jmp('jeq', R2, 2, 'nd_lla').ja('pass');
  a.label('nd_lla');
  a.ldx('h', R2, FP, L4 + 26).ldx('w', R3, FP, L4 + 28).alu64('lsh', R3, 16).alu64('or', R2, R3);
  a.jmp('jne', R2, R7, 'drop');
  a.ja('pass');

  a.label('pass');
  a.mov64(R0, TC_ACT_UNSPEC).exit();
  a.label('drop');
  a.mov64(R0, TC_ACT_SHOT).exit();
  return a.assemble();
}
