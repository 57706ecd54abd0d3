// What a pinned lease may send as: the guest's MAC (or 'learn') and the
// addresses it may use as source. Checked here, before anything touches the
// kernel: a bad value is an InputError naming it.
import { InputError, parseIp, formatIp, formatMac } from '@netgrant/core';

/** The options of a creator that pins its leases: the guest's MAC and addresses, and --pin. */
export const PIN_OPTIONS = [
  { name: 'guest-mac', value: true },
  { name: 'guest-ip', value: true, multi: true },
  { name: 'pin' },
] as const;

export interface PinSpec {
  /** The guest's MAC (6 bytes, unicast), or 'learn': the first source MAC the guest uses, and only it. */
  mac: Buffer | 'learn';
  /** IPv4/IPv6 literals the guest may use as source address. */
  addrs: string[];
}

/** A checked PinSpec: addresses as bytes, in the order given, without duplicates. */
export interface PinRules {
  /** null: learn. */
  mac: Buffer | null;
  v4: Buffer[];
  v6: Buffer[];
}

/** At most this many addresses per lease (each costs a few instructions per frame). */
export const MAX_PIN_ADDRS = 64;

/** Why mac cannot be a guest's source MAC, or null if it can. */
function badMac(mac: Buffer): string | null {
  if (mac.length !== 6) return `${mac.length} bytes, not 6`;
  if (mac.every((b) => b === 0)) return 'all zero';
  if (mac[0]! & 1) return 'a multicast or broadcast address';
  return null;
}

/** Why an address cannot be pinned as a source, or null. */
function badAddr(b: Buffer): string | null {
  if (b.every((x) => x === 0)) return 'the unspecified address (it is allowed only for DHCP and DAD, by the rules themselves)';
  if (b.length === 4) {
    if (b[0]! >= 224) return 'multicast, broadcast or reserved';
    if (b[0] === 127) return 'loopback';
  } else {
    if (b[0] === 0xff) return 'multicast';
    // The guest's own link-local address (EUI-64 of its MAC) passes by the rules themselves; any other would let it
    // speak as another guest's, which netgrant-dhcpd takes as that guest (its DHCPv6 identity).
    if (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80) return 'link-local (only the EUI-64 one of the guest\'s MAC, which the rules allow by themselves)';
    if (b.subarray(0, 15).every((x) => x === 0) && b[15] === 1) return 'loopback';
  }
  return null;
}

/** Check a PinSpec; throws InputError naming the bad value. */
export function pinRules(spec: PinSpec): PinRules {
  if (typeof spec !== 'object' || spec === null) throw new InputError('pin: no pin specification');
  let mac: Buffer | null;
  if (spec.mac === 'learn') mac = null;
  else if (Buffer.isBuffer(spec.mac)) {
    const why = badMac(spec.mac);
    if (why) throw new InputError(`pin: bad guest MAC ${spec.mac.length === 6 ? formatMac(spec.mac) : `(${spec.mac.toString('hex')})`}: ${why}`);
    mac = Buffer.from(spec.mac);
  } else throw new InputError(`pin: bad guest MAC: ${JSON.stringify(spec.mac)} (6 bytes or 'learn')`);
  if (!Array.isArray(spec.addrs)) throw new InputError('pin: the addresses are not a list');
  if (spec.addrs.length > MAX_PIN_ADDRS) throw new InputError(`pin: ${spec.addrs.length} addresses, at most ${MAX_PIN_ADDRS}`);
  const v4: Buffer[] = [];
  const v6: Buffer[] = [];
  for (const text of spec.addrs) {
    const ip = typeof text === 'string' && !text.includes('%') ? parseIp(text) : null;
    if (!ip) throw new InputError(`pin: bad address: ${JSON.stringify(text)} (an IPv4 or IPv6 literal)`);
    const why = badAddr(ip.bytes);
    if (why) throw new InputError(`pin: address ${formatIp(ip.bytes)} cannot be a guest's source: ${why}`);
    const list = ip.bytes.length === 4 ? v4 : v6;
    if (!list.some((b) => b.equals(ip.bytes))) list.push(ip.bytes);
  }
  return { mac, v4, v6 };
}
