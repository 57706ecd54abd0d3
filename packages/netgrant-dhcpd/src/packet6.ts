// DHCPv6 messages (RFC 8415; DNS servers RFC 3646), parsed from untrusted
// bytes and built for answers. Parsing fails closed: anything but a
// client's SOLICIT, REQUEST, CONFIRM, RENEW, REBIND or INFORMATION-REQUEST
// whose every option (and every option inside an IA_NA) lies inside its
// parent, with the identifiers RFC 8415 §16 requires of that type, at most
// one client id, server id, rapid commit and elapsed time, and no relay
// option, is null. Relay messages (RELAY-FORW) are not ours.

export const SOLICIT = 1;
export const ADVERTISE = 2;
export const REQUEST = 3;
export const CONFIRM = 4;
export const RENEW = 5;
export const REBIND = 6;
export const REPLY = 7;
export const INFORMATION_REQUEST = 11;

const OPT_CLIENTID = 1;
const OPT_SERVERID = 2;
const OPT_IA_NA = 3;
const OPT_IA_TA = 4;
const OPT_IAADDR = 5;
const OPT_ORO = 6;
const OPT_PREFERENCE = 7;
const OPT_ELAPSED_TIME = 8;
const OPT_RELAY_MSG = 9;
const OPT_STATUS_CODE = 13;
const OPT_RAPID_COMMIT = 14;
const OPT_INTERFACE_ID = 18;
const OPT_DNS_SERVERS = 23;
const OPT_IA_PD = 25;

export const STATUS_SUCCESS = 0;
export const STATUS_NOADDRSAVAIL = 2;
export const STATUS_NOBINDING = 3;
export const STATUS_NOTONLINK = 4;

/** The largest message taken: a client's fits an IPv6 minimum-MTU datagram. */
export const MAX_MESSAGE = 1232;
/** A DUID is 2 bytes of type and at most 128 more (RFC 8415 §11.1). */
const MAX_DUID = 130;
const MIN_DUID = 3;
/** Bounds on what one request may carry (each costs a little of every answer). */
const MAX_IAS = 8;
const MAX_IA_ADDRS = 8;

export interface Ia {
  /** The IAID, 4 bytes, as the client chose it. */
  iaid: Buffer;
  /** The addresses the client names in it (16 bytes each). */
  addrs: Buffer[];
}

export interface Request6 {
  type: number;
  /** The transaction id, 3 bytes. */
  xid: Buffer;
  clientId: Buffer | undefined;
  serverId: Buffer | undefined;
  /** The IA_NA options, in message order. */
  iaNa: Ia[];
  /** An IA_TA or IA_PD was present (never served). */
  otherIa: boolean;
  rapidCommit: boolean;
}

const CLIENT_TYPES = new Set([SOLICIT, REQUEST, CONFIRM, RENEW, REBIND, INFORMATION_REQUEST]);

/** Walk options in p[from, to): each as (code, value); false if one runs past `to` or visit says no. */
function walk(p: Buffer, from: number, to: number, visit: (code: number, v: Buffer) => boolean): boolean {
  let off = from;
  while (off < to) {
    if (off + 4 > to) return false;
    const code = p.readUInt16BE(off);
    const len = p.readUInt16BE(off + 2);
    const body = off + 4;
    if (body + len > to) return false;
    if (!visit(code, p.subarray(body, body + len))) return false;
    off = body + len;
  }
  return true;
}

function parseIa(v: Buffer): Ia | null {
  if (v.length < 12) return null;
  const addrs: Buffer[] = [];
  const ok = walk(v, 12, v.length, (code, o) => {
    if (code !== OPT_IAADDR) return true;
    if (o.length < 24 || addrs.length >= MAX_IA_ADDRS) return false;
    addrs.push(Buffer.from(o.subarray(0, 16)));
    return walk(o, 24, o.length, () => true);
  });
  return ok ? { iaid: Buffer.from(v.subarray(0, 4)), addrs } : null;
}

export function parseRequest6(p: Buffer): Request6 | null {
  if (p.length < 4 || p.length > MAX_MESSAGE) return null;
  const type = p[0]!;
  if (!CLIENT_TYPES.has(type)) return null;
  let clientId: Buffer | undefined;
  let serverId: Buffer | undefined;
  let rapidCommit = false;
  let elapsed = false;
  let otherIa = false;
  const iaNa: Ia[] = [];
  const duid = (v: Buffer) => v.length >= MIN_DUID && v.length <= MAX_DUID;
  const ok = walk(p, 4, p.length, (code, v) => {
    switch (code) {
      case OPT_CLIENTID:
        if (clientId || !duid(v)) return false;
        clientId = Buffer.from(v);
        return true;
      case OPT_SERVERID:
        if (serverId || !duid(v)) return false;
        serverId = Buffer.from(v);
        return true;
      case OPT_IA_NA: {
        const ia = parseIa(v);
        if (!ia || iaNa.length >= MAX_IAS || iaNa.some((i) => i.iaid.equals(ia.iaid))) return false;
        iaNa.push(ia);
        return true;
      }
      case OPT_IA_TA:
      case OPT_IA_PD:
        if (v.length < (code === OPT_IA_TA ? 4 : 12)) return false;
        otherIa = true;
        return true;
      case OPT_RAPID_COMMIT:
        if (rapidCommit || v.length !== 0) return false;
        rapidCommit = true;
        return true;
      case OPT_ELAPSED_TIME:
        if (elapsed || v.length !== 2) return false;
        elapsed = true;
        return true;
      case OPT_ORO:
        return v.length % 2 === 0;
      case OPT_RELAY_MSG:
      case OPT_INTERFACE_ID:
        return false; // a relay's, not a client's
      default:
        return true;
    }
  });
  if (!ok) return null;
  // RFC 8415 §16: what each type must and must not carry.
  const anyIa = iaNa.length > 0 || otherIa;
  if (type === INFORMATION_REQUEST) {
    if (anyIa) return null;
  } else {
    if (!clientId) return null;
    if ((type === REQUEST || type === RENEW) !== (serverId !== undefined)) return null;
  }
  return { type, xid: Buffer.from(p.subarray(1, 4)), clientId, serverId, iaNa, otherIa, rapidCommit };
}

/** What an answer's IA_NA holds: addresses with their lifetimes, or a status. */
export interface IaAnswer {
  iaid: Buffer;
  t1: number;
  t2: number;
  addrs: { addr: Buffer; preferred: number; valid: number }[];
  status?: number;
}

export interface Answer6 {
  type: typeof ADVERTISE | typeof REPLY;
  serverId: Buffer;
  ias: IaAnswer[];
  /** A top-level status code (CONFIRM's answer). */
  status?: number;
  rapidCommit: boolean;
  /** ADVERTISE: preference 255, so the client need not wait for others. */
  preference: boolean;
  dns: Buffer[];
}

function option(code: number, ...parts: Buffer[]): Buffer {
  const v = Buffer.concat(parts);
  const h = Buffer.alloc(4);
  h.writeUInt16BE(code, 0);
  h.writeUInt16BE(v.length, 2);
  return Buffer.concat([h, v]);
}

const u32 = (...ns: number[]) => {
  const b = Buffer.alloc(4 * ns.length);
  ns.forEach((n, i) => b.writeUInt32BE(n >>> 0, 4 * i));
  return b;
};

const STATUS_TEXT: Record<number, string> = {
  [STATUS_SUCCESS]: 'ok',
  [STATUS_NOADDRSAVAIL]: 'one IA per lease',
  [STATUS_NOBINDING]: 'no such binding',
  [STATUS_NOTONLINK]: 'not the lease\'s',
};

function status(code: number): Buffer {
  const c = Buffer.alloc(2);
  c.writeUInt16BE(code);
  return option(OPT_STATUS_CODE, c, Buffer.from(STATUS_TEXT[code] ?? ''));
}

/** The answer's bytes: our ids and the client's, copied as parsed (the protocol wants them back). */
export function buildAnswer6(req: Request6, a: Answer6): Buffer {
  const opts: Buffer[] = [Buffer.concat([Buffer.from([a.type]), req.xid])];
  if (req.clientId) opts.push(option(OPT_CLIENTID, req.clientId));
  opts.push(option(OPT_SERVERID, a.serverId));
  for (const ia of a.ias) {
    const inner = ia.addrs.map((x) => option(OPT_IAADDR, x.addr, u32(x.preferred, x.valid)));
    if (ia.status !== undefined) inner.push(status(ia.status));
    opts.push(option(OPT_IA_NA, ia.iaid, u32(ia.t1, ia.t2), ...inner));
  }
  if (a.status !== undefined) opts.push(status(a.status));
  if (a.preference) opts.push(option(OPT_PREFERENCE, Buffer.from([255])));
  if (a.rapidCommit) opts.push(option(OPT_RAPID_COMMIT));
  if (a.dns.length) opts.push(option(OPT_DNS_SERVERS, ...a.dns));
  return Buffer.concat(opts);
}
