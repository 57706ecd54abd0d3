// Addresses: add, delete, dump (IPv4 and IPv6).
import { attr, parseAttrs, u32 } from './attrs.js';
import { parseIp, formatIp, AF_INET, AF_INET6 } from './ip.js';
import { InputError } from '../errors.js';
import { NLM_F_CREATE, NLM_F_EXCL, type Netlink } from './socket.js';

const RTM_NEWADDR = 20;
const RTM_DELADDR = 21;
const RTM_GETADDR = 22;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_FLAGS = 8;
export const IFA_F_NODAD = 0x02;

export interface AddrInfo {
  index: number;
  family: number;
  address: string;
  prefix: number;
  flags: number;
}

function ifaddrmsg(family: number, prefix: number, index: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(family, 0);
  b.writeUInt8(prefix, 1);
  b.writeUInt32LE(index, 4);
  return b;
}

function addrBody(index: number, address: string, prefix: number, flags: number): Buffer {
  const ip = parseIp(address);
  if (!ip) throw new InputError(`not an IP address: ${JSON.stringify(address)}`);
  const max = ip.family === AF_INET ? 32 : 128;
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) throw new InputError(`bad prefix length /${prefix}`);
  const parts = [ifaddrmsg(ip.family, prefix, index), attr(IFA_LOCAL, ip.bytes), attr(IFA_ADDRESS, ip.bytes)];
  if (flags) parts.push(u32(IFA_FLAGS, flags));
  return Buffer.concat(parts);
}

/** Add address/prefix to link index (flags: IFA_F_NODAD for IPv6 without duplicate detection). */
export function addAddress(nl: Netlink, index: number, address: string, prefix: number, flags = 0): void {
  nl.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, addrBody(index, address, prefix, flags), `add address ${address}/${prefix}`);
}

export function deleteAddress(nl: Netlink, index: number, address: string, prefix: number): void {
  nl.request(RTM_DELADDR, 0, addrBody(index, address, prefix, 0), `delete address ${address}/${prefix}`);
}

/** Every address of the namespace (family 0: both). */
export function dumpAddresses(nl: Netlink, family = 0): AddrInfo[] {
  return nl
    .dump(RTM_GETADDR, ifaddrmsg(family, 0, 0), 'list addresses')
    .filter((m) => m.type === RTM_NEWADDR)
    .map((m) => {
      const at = parseAttrs(m.body.subarray(8));
      const bytes = at.get(IFA_LOCAL) ?? at.get(IFA_ADDRESS) ?? Buffer.alloc(0);
      const fl = at.get(IFA_FLAGS);
      return {
        index: m.body.readUInt32LE(4),
        family: m.body[0]!,
        address: formatIp(bytes),
        prefix: m.body[1]!,
        flags: fl ? fl.readUInt32LE(0) : m.body[2]!,
      };
    });
}

export { AF_INET, AF_INET6 };
