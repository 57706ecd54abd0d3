// IPv4/IPv6 prefixes as bigints: parsing, membership, the usable host
// range, and formatting.
import { parseIp, formatIp, AF_INET, AF_INET6 } from '@netgrant/core';

export interface Cidr {
  family: typeof AF_INET | typeof AF_INET6;
  bits: 32 | 128;
  prefix: number;
  /** The network address (host bits zero). */
  network: bigint;
  text: string;
}

export function ipToBig(bytes: Buffer): bigint {
  return BigInt(`0x${bytes.toString('hex') || '0'}`);
}

export function bigToIp(v: bigint, bits: 32 | 128): string {
  return formatIp(Buffer.from(v.toString(16).padStart(bits / 4, '0'), 'hex'));
}

/** Parse "addr/prefix"; null if malformed. The host bits must be zero. */
export function parseCidr(text: string): Cidr | null {
  const m = text.match(/^([^/\s]+)\/(\d{1,3})$/);
  if (!m) return null;
  const ip = parseIp(m[1]!);
  if (!ip) return null;
  const bits = ip.family === AF_INET ? 32 : 128;
  const prefix = Number(m[2]);
  if (prefix > bits) return null;
  const value = ipToBig(ip.bytes);
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  if ((value & hostMask) !== 0n) return null;
  return { family: ip.family, bits, prefix, network: value, text };
}

export function contains(c: Cidr, addr: string): boolean {
  const ip = parseIp(addr);
  if (!ip || ip.family !== c.family) return false;
  const shift = BigInt(c.bits - c.prefix);
  return ipToBig(ip.bytes) >> shift === c.network >> shift;
}

/**
 * The first and last usable host addresses: IPv4 excludes the network and
 * broadcast addresses (a /31 has two usable, RFC 3021; a /32 one); IPv6
 * excludes the subnet-router anycast address (host part zero).
 */
export function usableRange(c: Cidr): { first: bigint; last: bigint } | null {
  const size = 1n << BigInt(c.bits - c.prefix);
  if (c.family === AF_INET) {
    if (c.prefix === 32) return { first: c.network, last: c.network };
    if (c.prefix === 31) return { first: c.network, last: c.network + 1n };
    return { first: c.network + 1n, last: c.network + size - 2n };
  }
  if (c.prefix === 128) return null;
  return { first: c.network + 1n, last: c.network + size - 1n };
}

