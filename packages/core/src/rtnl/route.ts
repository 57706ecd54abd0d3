// Routes in the main table: default via a gateway, device routes; IPv4 and IPv6.
import { attr, parseAttrs, u32 } from './attrs.js';
import { parseIp, formatIp, type IpAddr } from './ip.js';
import { InputError } from '../errors.js';
import { NLM_F_CREATE, NLM_F_EXCL, type Netlink } from './socket.js';

const RTM_NEWROUTE = 24;
const RTM_DELROUTE = 25;
const RTM_GETROUTE = 26;
const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RT_TABLE_MAIN = 254;
const RTPROT_BOOT = 3;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
const RTN_UNICAST = 1;

export interface Route {
  /** Destination prefix; omit (or 0-length) for the default route. */
  dst?: string;
  prefix?: number;
  /** Next hop. */
  gateway?: string;
  /** Output link index. */
  oif?: number;
  family?: number;
}

function ipOrThrow(text: string): IpAddr {
  const ip = parseIp(text);
  if (!ip) throw new InputError(`not an IP address: ${JSON.stringify(text)}`);
  return ip;
}

function body(r: Route): Buffer {
  const dst = r.dst !== undefined ? ipOrThrow(r.dst) : undefined;
  const gw = r.gateway !== undefined ? ipOrThrow(r.gateway) : undefined;
  const family = dst?.family ?? gw?.family ?? r.family;
  if (family === undefined) throw new InputError('route: no address family (give dst, gateway or family)');
  if (dst && gw && dst.family !== gw.family) throw new InputError('route: destination and gateway families differ');
  const rtm = Buffer.alloc(12);
  rtm.writeUInt8(family, 0);
  rtm.writeUInt8(dst ? (r.prefix ?? dst.bytes.length * 8) : 0, 1);
  rtm.writeUInt8(RT_TABLE_MAIN, 4);
  rtm.writeUInt8(RTPROT_BOOT, 5);
  rtm.writeUInt8(gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK, 6);
  rtm.writeUInt8(RTN_UNICAST, 7);
  const parts: Buffer[] = [rtm];
  if (dst) parts.push(attr(RTA_DST, dst.bytes));
  if (gw) parts.push(attr(RTA_GATEWAY, gw.bytes));
  if (r.oif !== undefined) parts.push(u32(RTA_OIF, r.oif));
  return Buffer.concat(parts);
}

const describe = (r: Route) => `${r.dst ? `${r.dst}/${r.prefix ?? ''}` : 'default'}${r.gateway ? ` via ${r.gateway}` : ''}${r.oif !== undefined ? ` dev ${r.oif}` : ''}`;

export function addRoute(nl: Netlink, r: Route): void {
  nl.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body(r), `add route ${describe(r)}`);
}

export function deleteRoute(nl: Netlink, r: Route): void {
  nl.request(RTM_DELROUTE, 0, body(r), `delete route ${describe(r)}`);
}

export interface RouteInfo {
  family: number;
  dst: string | undefined;
  prefix: number;
  gateway: string | undefined;
  oif: number | undefined;
  table: number;
}

/** The routes of the main table (family 0: both). */
export function dumpRoutes(nl: Netlink, family = 0): RouteInfo[] {
  const req = Buffer.alloc(12);
  req.writeUInt8(family, 0);
  return nl
    .dump(RTM_GETROUTE, req, 'list routes')
    .filter((m) => m.type === RTM_NEWROUTE)
    .map((m) => {
      const at = parseAttrs(m.body.subarray(12));
      const dst = at.get(RTA_DST);
      const gw = at.get(RTA_GATEWAY);
      const oif = at.get(RTA_OIF);
      const table = at.get(15 /* RTA_TABLE */);
      return {
        family: m.body[0]!,
        dst: dst ? formatIp(dst) : undefined,
        prefix: m.body[1]!,
        gateway: gw ? formatIp(gw) : undefined,
        oif: oif ? oif.readUInt32LE(0) : undefined,
        table: table ? table.readUInt32LE(0) : m.body[4]!,
      };
    })
    .filter((r) => r.table === RT_TABLE_MAIN);
}
