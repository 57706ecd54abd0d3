// MAC addresses for taps: parsed from the command line, random, or stable
// (derived from the peer and the name). Generated ones start with 0xfe, as
// qemu-bridge-helper's do: locally administered, unicast, and high enough
// that a bridge never takes the tap's address as its own.
import { UsageError } from '@netgrant/core';

/** node:crypto, loaded on first use: it costs ~2.5 ms to load (docs/perf.md). */
function crypto(): typeof import('node:crypto') {
  return require('node:crypto') as typeof import('node:crypto');
}

export function parseMac(text: string, what: string): Buffer {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(text)) throw new UsageError(`${what}: not a MAC address: ${JSON.stringify(text)}`);
  const mac = Buffer.from(text.split(':').map((h) => parseInt(h, 16)));
  if (mac[0]! & 1) throw new UsageError(`${what}: ${text} is a multicast address`);
  if (mac.every((b) => b === 0)) throw new UsageError(`${what}: the all-zero address`);
  return mac;
}

export function randomMac(): Buffer {
  return Buffer.concat([Buffer.from([0xfe]), crypto().randomBytes(5)]);
}

/** The same MAC every time for the same peer uid and interface name. */
export function stableMac(uid: number, name: string): Buffer {
  const h = crypto().createHash('sha256').update(`netgrant-mktap\0${uid}\0${name}`).digest();
  return Buffer.concat([Buffer.from([0xfe]), h.subarray(0, 5)]);
}

export function formatMac(mac: Buffer): string {
  return [...mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
}
