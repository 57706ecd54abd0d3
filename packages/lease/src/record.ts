// Lease records: what every interface a netgrant creator makes carries from
// before anyone else can see it, in its IFLA_IFALIAS. The kernel refuses to
// change an alias without CAP_NET_ADMIN over the interface's namespace
// (RTM_SETLINK and /sys/class/net/*/ifalias both check it), so a lessee
// holding a tap fd cannot rewrite it; in a namespace a user owns, the user
// can write any alias, so records there never count (trust.ts).
//
//   netgrant1 lease by=mktap uid=1000 owner=1000 group=1000 mac=fe:12:34:56:78:9a
//   netgrant1 persist by=mktap uid=1000 owner=1000 group=-
//   netgrant1 lease by=mkmacvlan uid=1000 parent=4026531840.2
//   netgrant1 lease by=mkveth uid=1000 addrs=10.0.0.7/32,fd00::7/128 ports=tcp:8080:80 nft=1
//   netgrant1 lease by=mktap uid=1000 owner=1000 group=- mac=fe:.. guest=02:.. addrs=10.0.0.7/24 gw=10.0.0.1
//   netgrant1 lease by=mkmacvtap uid=1000 mac=02:12:34:56:78:9a node=27.4711 born=81234567
//   netgrant1 lease by=mkveth uid=0 addrs=10.88.0.2/32 cni=3f2a…9c/eth0
//
// `lease`: lives as long as its holder; the reaper's rules (stale.ts) end it
// once the holder is gone or the device no longer matches its record.
// `persist`: an administrator's --persist interface, never touched.
import { InputError, ifNameProblem, parseIp, AF_INET } from '@netgrant/core';

export const RECORD_PREFIX = 'netgrant1 ';

export type LeaseKind = 'lease' | 'persist';

export interface LeaseRecord {
  kind: LeaseKind;
  /** The creator that made it (a program name). */
  by: string;
  /** Whom it is for. */
  uid: number;
  /** For taps: the TUNSETOWNER/TUNSETGROUP values it was made with (null: unset). */
  owner?: number | null;
  group?: number | null;
  /** The host-side MAC it was made with (lowercase, colon-separated). */
  mac?: string;
  /** Launchers: the parent interface, as "<netns inode>.<ifindex>". */
  parent?: string;
  /** mkveth: the addresses (addr/prefix) of the namespace end, on the host end's record; mktap --pool: the guest's. */
  addrs?: string[];
  /** mktap: the MAC the guest must use (--guest-mac). */
  guest?: string;
  /** mktap --pool: the guest's gateways, one per subnet. */
  gw?: string[];
  /** mkveth: its port forwards, "PROTO:HOSTPORT:PORT" (proto tcp or udp). */
  ports?: string[];
  /** The lease has an nftables table of its own (tables.ts): `nft=1`. */
  nft?: boolean;
  /**
   * mkmacvtap: the private device node its fds were opened through, as
   * "<mount id>.<inode>" (holders.ts); "0.0" until they are open.
   */
  node?: string;
  /** mkmacvtap: when it was made, in ms of the monotonic clock (the holder rule's grace, stale.ts). */
  born?: number;
  /** netgrant-cni: the attachment it is, "NETWORK/CONTAINERID/IFNAME" (cniKey). */
  cni?: string;
}

/** CNI_CONTAINERID as the spec has it (a letter or digit, then also _ . -), at most 128 bytes here. */
export const CNI_CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
/** A CNI network name (the same characters), at most 64 bytes here. */
export const CNI_NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * A CNI attachment's key in a record: "NETWORK/CONTAINERID/IFNAME". The
 * spec keys attachments by (CNI_CONTAINERID, CNI_IFNAME); the network's
 * name is part of it so that one network's GC never touches another's.
 * Neither part may hold a "/".
 */
export function cniKey(network: string, containerId: string, ifname: string): string {
  const key = `${network}/${containerId}/${ifname}`;
  if (!cniOk(key)) throw new InputError(`bad CNI attachment ${JSON.stringify(key)}`);
  return key;
}

/** A well-formed attachment key (cniKey's form). */
export function cniOk(text: string): boolean {
  const parts = text.split('/');
  return parts.length === 3 && CNI_NETWORK_NAME.test(parts[0]!) && CNI_CONTAINER_ID.test(parts[1]!) && ifNameProblem(parts[2]!) === null;
}

const WORD = /^[a-z][a-z0-9-]{0,31}$/;
const ID = /^(0|[1-9][0-9]{0,9})$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const PARENT = /^[0-9]{1,20}\.[0-9]{1,10}$/;
const NODE = /^(0|[1-9][0-9]{0,9})\.(0|[1-9][0-9]{0,19})$/;
const BORN = /^(0|[1-9][0-9]{0,14})$/;
/** IFALIASZ - 1: the longest alias the kernel keeps. */
const ALIAS_MAX = 255;

const PORT = /^(tcp|udp):([1-9][0-9]{0,4}):([1-9][0-9]{0,4})$/;
const portOk = (text: string) => {
  const m = PORT.exec(text);
  return m !== null && Number(m[2]) < 65536 && Number(m[3]) < 65536;
};

/** addr/prefix with a prefix that fits the family. */
function addrOk(text: string): boolean {
  const m = /^([^/]+)\/([0-9]{1,3})$/.exec(text);
  const ip = m ? parseIp(m[1]!) : null;
  return ip !== null && Number(m![2]) <= (ip.family === AF_INET ? 32 : 128);
}

function id(text: string): number | null {
  if (!ID.test(text)) return null;
  const n = Number(text);
  return n < 0xffffffff ? n : null;
}

/** The alias text of a record (InputError if a field cannot be written unambiguously). */
export function formatRecord(r: LeaseRecord): string {
  if (!WORD.test(r.by)) throw new InputError(`lease record: bad creator name ${JSON.stringify(r.by)}`);
  if (id(String(r.uid)) === null) throw new InputError(`lease record: bad uid ${r.uid}`);
  const words = [`${RECORD_PREFIX}${r.kind}`, `by=${r.by}`, `uid=${r.uid}`];
  const optId = (k: string, v: number | null | undefined) => {
    if (v === undefined) return;
    if (v !== null && id(String(v)) === null) throw new InputError(`lease record: bad ${k} ${v}`);
    words.push(`${k}=${v === null ? '-' : v}`);
  };
  optId('owner', r.owner);
  optId('group', r.group);
  if (r.mac !== undefined) {
    if (!MAC.test(r.mac)) throw new InputError(`lease record: bad MAC ${r.mac}`);
    words.push(`mac=${r.mac}`);
  }
  if (r.guest !== undefined) {
    if (!MAC.test(r.guest)) throw new InputError(`lease record: bad guest MAC ${r.guest}`);
    words.push(`guest=${r.guest}`);
  }
  if (r.parent !== undefined) {
    if (!PARENT.test(r.parent)) throw new InputError(`lease record: bad parent ${r.parent}`);
    words.push(`parent=${r.parent}`);
  }
  if (r.addrs !== undefined) {
    if (r.addrs.length === 0 || !r.addrs.every(addrOk)) throw new InputError(`lease record: bad addresses ${r.addrs.join(',')}`);
    words.push(`addrs=${r.addrs.join(',')}`);
  }
  if (r.gw !== undefined) {
    if (r.gw.length === 0 || !r.gw.every((g) => parseIp(g) !== null)) throw new InputError(`lease record: bad gateways ${r.gw.join(',')}`);
    words.push(`gw=${r.gw.join(',')}`);
  }
  if (r.ports !== undefined && r.ports.length > 0) {
    if (!r.ports.every(portOk)) throw new InputError(`lease record: bad ports ${r.ports.join(',')}`);
    words.push(`ports=${r.ports.join(',')}`);
  }
  if (r.nft) words.push('nft=1');
  if (r.node !== undefined) {
    if (!NODE.test(r.node)) throw new InputError(`lease record: bad node ${r.node}`);
    words.push(`node=${r.node}`);
  }
  if (r.born !== undefined) {
    if (!BORN.test(String(r.born))) throw new InputError(`lease record: bad birth time ${r.born}`);
    words.push(`born=${r.born}`);
  }
  if (r.cni !== undefined) {
    if (!cniOk(r.cni)) throw new InputError(`lease record: bad CNI attachment ${JSON.stringify(r.cni)}`);
    words.push(`cni=${r.cni}`);
  }
  const text = words.join(' ');
  if (text.length > ALIAS_MAX) throw new InputError('lease record too long');
  return text;
}

/**
 * The record an alias holds, or null if it is not a netgrant record (or
 * not a well-formed one: anything unexpected is not ours, and never counts
 * or gets deleted).
 */
export function parseRecord(alias: string | undefined): LeaseRecord | null {
  if (alias === undefined || !alias.startsWith(RECORD_PREFIX) || alias.length > ALIAS_MAX) return null;
  const [kind, ...rest] = alias.slice(RECORD_PREFIX.length).split(' ');
  if (kind !== 'lease' && kind !== 'persist') return null;
  const fields = new Map<string, string>();
  for (const w of rest) {
    const eq = w.indexOf('=');
    if (eq <= 0) return null;
    const k = w.slice(0, eq);
    if (fields.has(k)) return null;
    fields.set(k, w.slice(eq + 1));
  }
  const by = fields.get('by');
  const uid = id(fields.get('uid') ?? '');
  if (by === undefined || !WORD.test(by) || uid === null) return null;
  const r: LeaseRecord = { kind, by, uid };
  for (const k of ['owner', 'group'] as const) {
    const v = fields.get(k);
    if (v === undefined) continue;
    if (v === '-') r[k] = null;
    else {
      const n = id(v);
      if (n === null) return null;
      r[k] = n;
    }
  }
  const mac = fields.get('mac');
  if (mac !== undefined) {
    if (!MAC.test(mac)) return null;
    r.mac = mac;
  }
  const guest = fields.get('guest');
  if (guest !== undefined) {
    if (!MAC.test(guest)) return null;
    r.guest = guest;
  }
  const parent = fields.get('parent');
  if (parent !== undefined) {
    if (!PARENT.test(parent)) return null;
    r.parent = parent;
  }
  const addrs = fields.get('addrs');
  if (addrs !== undefined) {
    const list = addrs.split(',');
    if (!list.every(addrOk)) return null;
    r.addrs = list;
  }
  const gw = fields.get('gw');
  if (gw !== undefined) {
    const list = gw.split(',');
    if (!list.every((g) => parseIp(g) !== null)) return null;
    r.gw = list;
  }
  const ports = fields.get('ports');
  if (ports !== undefined) {
    const list = ports.split(',');
    if (!list.every(portOk)) return null;
    r.ports = list;
  }
  const table = fields.get('nft');
  if (table !== undefined) {
    if (table !== '1') return null;
    r.nft = true;
  }
  const node = fields.get('node');
  if (node !== undefined) {
    if (!NODE.test(node)) return null;
    r.node = node;
  }
  const born = fields.get('born');
  if (born !== undefined) {
    if (!BORN.test(born)) return null;
    r.born = Number(born);
  }
  const cni = fields.get('cni');
  if (cni !== undefined) {
    if (!cniOk(cni)) return null;
    r.cni = cni;
  }
  for (const k of fields.keys()) if (!['by', 'uid', 'owner', 'group', 'mac', 'guest', 'parent', 'addrs', 'gw', 'ports', 'nft', 'node', 'born', 'cni'].includes(k)) return null;
  return r;
}
