// DHCPv4 messages (RFC 2131, 2132, 3442), parsed from untrusted bytes and
// built for answers. Parsing fails closed: anything but a well-formed
// BOOTREQUEST from an Ethernet client, with each option inside the packet,
// one message type, no option overload and no relay, is null.
import { parseIp, formatIp, formatMac } from '@netgrant/core';

export const DISCOVER = 1;
export const OFFER = 2;
export const REQUEST = 3;
export const ACK = 5;
export const NAK = 6;

const COOKIE = 0x63825363;
const FIXED = 236;
/** The smallest BOOTP message (RFC 951), answers padded to it. */
const MIN_REPLY = 300;

export interface Request {
  type: number;
  xid: number;
  flags: number;
  ciaddr: string;
  /** The client's hardware address, lowercase colon form. */
  chaddr: string;
  chaddrRaw: Buffer;
  requested: string | undefined;
  serverId: string | undefined;
}


export function parseRequest(p: Buffer): Request | null {
  if (p.length < FIXED + 4 || p.length > 1500) return null;
  if (p[0] !== 1 || p[1] !== 1 || p[2] !== 6) return null; // BOOTREQUEST, Ethernet, 6-byte MAC
  if (p.readUInt32BE(24) !== 0) return null; // giaddr: relayed requests are not ours
  if (p.readUInt32BE(FIXED) !== COOKIE) return null;
  let type: number | undefined;
  let requested: string | undefined;
  let serverId: string | undefined;
  let ended = false;
  for (let off = FIXED + 4; off < p.length; ) {
    const code = p[off]!;
    if (code === 0) {
      off++;
      continue;
    }
    if (code === 255) {
      ended = true;
      break;
    }
    if (off + 2 > p.length) return null;
    const len = p[off + 1]!;
    const body = off + 2;
    if (body + len > p.length) return null; // an option past the end
    const v = p.subarray(body, body + len);
    if (code === 53) {
      if (len !== 1 || type !== undefined) return null;
      type = v[0];
    } else if (code === 50) {
      if (len !== 4 || requested !== undefined) return null;
      requested = formatIp(v);
    } else if (code === 54) {
      if (len !== 4 || serverId !== undefined) return null;
      serverId = formatIp(v);
    } else if (code === 52) return null; // option overload: sname/file would hold options
    off = body + len;
  }
  if (!ended || type === undefined) return null;
  const chaddrRaw = Buffer.from(p.subarray(28, 34));
  if (chaddrRaw[0]! & 1 || chaddrRaw.every((b) => b === 0)) return null;
  return {
    type,
    xid: p.readUInt32BE(4),
    flags: p.readUInt16BE(10),
    ciaddr: formatIp(p.subarray(12, 16)),
    chaddr: formatMac(chaddrRaw),
    chaddrRaw,
    requested,
    serverId,
  };
}

export interface Answer {
  type: typeof OFFER | typeof ACK | typeof NAK;
  serverId: string;
  /** Omitted for NAK. */
  lease?: { address: string; prefix: number; gateway: string; dns: string[]; mtu: number; seconds: number };
}

const ipBytes = (a: string) => parseIp(a)!.bytes;

function option(code: number, value: Buffer): Buffer {
  return Buffer.concat([Buffer.from([code, value.length]), value]);
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

/** RFC 3442 destination descriptor: prefix length, then the significant octets. */
function route(dst: string, prefix: number, via: string): Buffer {
  return Buffer.concat([Buffer.from([prefix]), ipBytes(dst).subarray(0, Math.ceil(prefix / 8)), ipBytes(via)]);
}

export function buildAnswer(req: Request, a: Answer): Buffer {
  const h = Buffer.alloc(FIXED + 4);
  h[0] = 2;
  h[1] = 1;
  h[2] = 6;
  h.writeUInt32BE(req.xid, 4);
  h.writeUInt16BE(req.flags & 0x8000, 10);
  if (a.type === ACK && req.ciaddr !== '0.0.0.0') ipBytes(req.ciaddr).copy(h, 12);
  if (a.lease) ipBytes(a.lease.address).copy(h, 16);
  req.chaddrRaw.copy(h, 28);
  h.writeUInt32BE(COOKIE, FIXED);
  const opts = [option(53, Buffer.from([a.type])), option(54, ipBytes(a.serverId))];
  const l = a.lease;
  if (l) {
    const mask = l.prefix === 0 ? 0 : (0xffffffff << (32 - l.prefix)) >>> 0;
    opts.push(option(51, u32(l.seconds)), option(58, u32(l.seconds / 2)), option(59, u32((l.seconds * 7) / 8)));
    opts.push(option(1, u32(mask)), option(3, ipBytes(l.gateway)));
    // Classless routes: the gateway on-link when it is outside the guest's prefix (routed: a /32), then the default route.
    const onLink = l.prefix === 32 || !sameNet(l.address, l.gateway, l.prefix);
    opts.push(option(121, Buffer.concat([...(onLink ? [route(l.gateway, 32, '0.0.0.0')] : []), route('0.0.0.0', 0, l.gateway)])));
    const dns = l.dns.filter((d) => parseIp(d)?.bytes.length === 4);
    if (dns.length) opts.push(option(6, Buffer.concat(dns.map(ipBytes))));
    const mtu = Buffer.alloc(2);
    mtu.writeUInt16BE(Math.min(65535, Math.max(68, l.mtu)));
    opts.push(option(26, mtu));
  }
  opts.push(Buffer.from([255]));
  const out = Buffer.concat([h, ...opts]);
  return out.length >= MIN_REPLY ? out : Buffer.concat([out, Buffer.alloc(MIN_REPLY - out.length)]);
}

function sameNet(a: string, b: string, prefix: number): boolean {
  const x = ipBytes(a).readUInt32BE(0);
  const y = ipBytes(b).readUInt32BE(0);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return ((x ^ y) & mask) === 0;
}
