// MAC addresses for leases (mktap, mkmacvtap): parsed from the command line, random, or stable
// (derived from the peer and the name). A tap's generated host-side MACs
// start with 0xfe, as qemu-bridge-helper's do: locally administered,
// unicast, and high enough that a bridge never takes the tap's address as
// its own. A guest's (--guest-mac) start with 0x02.
import { UsageError, parseMac } from '@netgrant/core';

/** node:crypto, loaded on first use: it costs ~2.5 ms to load (docs/perf.md). */
function crypto(): typeof import('node:crypto') {
  return require('node:crypto') as typeof import('node:crypto');
}

/** A MAC from the command line (UsageError naming `what` if it is not a unicast, non-zero one). */
export function macOption(text: string, what: string): Buffer {
  const mac = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(text) ? parseMac(text) : null;
  if (!mac) throw new UsageError(`${what}: not a MAC address: ${JSON.stringify(text)}`);
  if (mac[0]! & 1) throw new UsageError(`${what}: ${text} is a multicast address`);
  if (mac.every((b) => b === 0)) throw new UsageError(`${what}: the all-zero address`);
  return mac;
}

/** The first byte of generated MACs: 0xfe for a tap's host side, 0x02 for a guest (both locally administered unicast). */
const FIRST = { host: 0xfe, guest: 0x02 } as const;

export function randomMac(side: 'host' | 'guest' = 'host'): Buffer {
  return Buffer.concat([Buffer.from([FIRST[side]]), crypto().randomBytes(5)]);
}

/**
 * The same MAC every time for the same peer uid, interface name and side
 * (the tap's host side, or the guest behind it).
 */
export function stableMac(uid: number, name: string, side: 'host' | 'guest' = 'host'): Buffer {
  const h = crypto().createHash('sha256').update(`netgrant-mktap\0${uid}\0${name}${side === 'guest' ? '\0guest' : ''}`).digest();
  return Buffer.concat([Buffer.from([FIRST[side]]), h.subarray(0, 5)]);
}
