// Links: create (veth, macvlan, macvtap, ipvlan, vlan, bridge, ...), possibly
// directly in another network namespace (IFLA_NET_NS_FD); set up/down,
// MTU, MAC, txqueuelen, master, namespace, name; delete; get; dump.
import { SysError } from '../errors.js';
import { attr, nested, parseAttrs, str, u16, u32, cstr } from './attrs.js';
import { NLM_F_CREATE, NLM_F_EXCL, type Netlink, type NlMessage } from './socket.js';

export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
const RTM_GETLINK = 18;
const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_LINK = 5;
const IFLA_MASTER = 10;
const IFLA_TXQLEN = 13;
const IFLA_IFALIAS = 20;
const IFLA_LINKINFO = 18;
const IFLA_NET_NS_FD = 28;
const IFLA_LINK_NETNSID = 37;
const IFLA_PARENT_DEV_NAME = 56;
const IFLA_PARENT_DEV_BUS_NAME = 57;
const IFLA_EXT_MASK = 29;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const VETH_INFO_PEER = 1;
const IFLA_VLAN_ID = 1;
/** 802.1Q VIDs a VLAN device may have (0 and 4095 are reserved). */
export const VLAN_ID_MIN = 1;
export const VLAN_ID_MAX = 4094;
const IFF_UP = 1;
/** The device has carrier (in ifi_flags; set only while it is up). */
export const IFF_LOWER_UP = 0x10000;
// IFLA_TUN_* (linux/if_link.h)
const IFLA_TUN_OWNER = 1;
const IFLA_TUN_GROUP = 2;
const IFLA_TUN_TYPE = 3;
const IFLA_TUN_PERSIST = 6;
const IFLA_TUN_MULTI_QUEUE = 7;
const IFLA_TUN_NUM_QUEUES = 8;
const IFLA_TUN_NUM_DISABLED_QUEUES = 9;

export const MACVLAN_MODES = { private: 1, vepa: 2, bridge: 4, passthru: 8 } as const;
export const IPVLAN_MODES = { l2: 0, l3: 1, l3s: 2 } as const;
export const IPVLAN_FLAGS = { bridge: 0, private: 1, vepa: 2 } as const;

export interface LinkInfo {
  index: number;
  name: string;
  flags: number;
  up: boolean;
  mtu: number | undefined;
  mac: Buffer | undefined;
  kind: string | undefined;
  master: number | undefined;
  parent: number | undefined;
  /** The id the link's namespace gives the parent's (IFLA_LINK_NETNSID): set when the parent is in another namespace. */
  parentNetnsid: number | undefined;
  /** For 802.1Q VLAN devices: the VID. */
  vlanId?: number;
  /** The device the netdev belongs to (a physical NIC's bus and device, such as "pci" and "0000:00:04.0"), when it has one. */
  parentDev?: { bus: string; name: string };
  /** The interface alias (IFLA_IFALIAS), if any. */
  alias: string | undefined;
  /**
   * For tun/tap devices: owner and group (undefined when unset), type (1 tun,
   * 2 tap), persist, multiqueue, and for a multiqueue device (the kernel
   * reports them for no other) the queues attached (fds open and not
   * detached with TUNSETQUEUE) and detached.
   */
  tun?: { owner: number | undefined; group: number | undefined; type: number | undefined; persist: boolean; multiQueue: boolean; queues: number | undefined; disabledQueues: number | undefined };
}

/** Link attributes a create or change may set. */
export interface LinkAttrs {
  name?: string;
  mtu?: number;
  mac?: Buffer;
  txqueuelen?: number;
  /** Bridge (or bond) index; 0 detaches. */
  master?: number;
  /** Parent link index (macvlan, ipvlan, macvtap). */
  parent?: number;
  /** Create in / move to the network namespace open at this fd. */
  netnsFd?: number;
  /** The interface alias (IFLA_IFALIAS). */
  alias?: string;
  up?: boolean;
}

export type LinkKind =
  | { kind: 'veth'; peerName?: string; peerNetnsFd?: number }
  | { kind: 'macvlan' | 'macvtap'; mode?: keyof typeof MACVLAN_MODES }
  | { kind: 'ipvlan'; mode?: keyof typeof IPVLAN_MODES; flag?: keyof typeof IPVLAN_FLAGS }
  | { kind: 'vlan'; id: number }
  | { kind: 'bridge' }
  | { kind: string };

function ifinfomsg(index: number, flags = 0, change = 0): Buffer {
  const b = Buffer.alloc(16);
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(flags, 8);
  b.writeUInt32LE(change, 12);
  return b;
}

function attrsFor(a: LinkAttrs): Buffer[] {
  const out: Buffer[] = [];
  if (a.name !== undefined) out.push(str(IFLA_IFNAME, a.name));
  if (a.mtu !== undefined) out.push(u32(IFLA_MTU, a.mtu));
  if (a.mac !== undefined) out.push(attr(IFLA_ADDRESS, a.mac));
  if (a.txqueuelen !== undefined) out.push(u32(IFLA_TXQLEN, a.txqueuelen));
  if (a.master !== undefined) out.push(u32(IFLA_MASTER, a.master));
  if (a.parent !== undefined) out.push(u32(IFLA_LINK, a.parent));
  if (a.netnsFd !== undefined) out.push(u32(IFLA_NET_NS_FD, a.netnsFd));
  if (a.alias !== undefined) out.push(attr(IFLA_IFALIAS, Buffer.from(a.alias)));
  return out;
}

function kindData(k: LinkKind): Buffer[] {
  const data: Buffer[] = [];
  if (k.kind === 'veth' && ('peerName' in k || 'peerNetnsFd' in k)) {
    const peer: Buffer[] = [];
    if (k.peerName !== undefined) peer.push(str(IFLA_IFNAME, k.peerName));
    if (k.peerNetnsFd !== undefined) peer.push(u32(IFLA_NET_NS_FD, k.peerNetnsFd));
    data.push(attr(VETH_INFO_PEER, Buffer.concat([ifinfomsg(0), ...peer])));
  } else if ((k.kind === 'macvlan' || k.kind === 'macvtap') && 'mode' in k && k.mode) {
    data.push(u32(1 /* IFLA_MACVLAN_MODE */, MACVLAN_MODES[k.mode as keyof typeof MACVLAN_MODES]));
  } else if (k.kind === 'ipvlan' && ('mode' in k || 'flag' in k)) {
    const ik = k as { mode?: keyof typeof IPVLAN_MODES; flag?: keyof typeof IPVLAN_FLAGS };
    if (ik.mode) data.push(u16(1 /* IFLA_IPVLAN_MODE */, IPVLAN_MODES[ik.mode]));
    if (ik.flag) data.push(u16(2 /* IFLA_IPVLAN_FLAGS */, IPVLAN_FLAGS[ik.flag]));
  } else if (k.kind === 'vlan' && 'id' in k) {
    const id = (k as { id: number }).id;
    if (!Number.isInteger(id) || id < VLAN_ID_MIN || id > VLAN_ID_MAX) throw new SysError('create vlan link', 22 /* EINVAL */, `VID ${id} out of ${VLAN_ID_MIN}-${VLAN_ID_MAX}`);
    data.push(u16(IFLA_VLAN_ID, id));
  }
  const info = [str(IFLA_INFO_KIND, k.kind)];
  if (data.length) info.push(nested(IFLA_INFO_DATA, data));
  return [nested(IFLA_LINKINFO, info)];
}

/** Create a link (never replaces one: NLM_F_EXCL). */
export function createLink(nl: Netlink, kind: LinkKind, a: LinkAttrs): void {
  const body = Buffer.concat([ifinfomsg(0, a.up ? IFF_UP : 0, a.up ? IFF_UP : 0), ...attrsFor(a), ...kindData(kind)]);
  nl.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body, `create ${kind.kind} link${a.name ? ` ${a.name}` : ''}`);
}

/** Change a link's attributes (and its up/down state when `up` is given). */
export function setLink(nl: Netlink, index: number, a: LinkAttrs): void {
  const up = a.up === undefined ? 0 : a.up ? IFF_UP : 0;
  const body = Buffer.concat([ifinfomsg(index, up, a.up === undefined ? 0 : IFF_UP), ...attrsFor(a)]);
  nl.request(RTM_NEWLINK, 0, body, `change link ${index}`);
}

export function deleteLink(nl: Netlink, index: number): void {
  nl.request(RTM_DELLINK, 0, ifinfomsg(index), `delete link ${index}`);
}

/** Delete a link that may be gone meanwhile (with its namespace, or by another's hand): whether this call deleted it. */
export function deleteLinkIfThere(nl: Netlink, index: number): boolean {
  try {
    deleteLink(nl, index);
    return true;
  } catch (e) {
    if (e instanceof SysError && e.code === 'ENODEV') return false;
    throw e;
  }
}

/** A link from an RTM_NEWLINK message (a dump's, a get's or a notification's). */
export function decodeLink(m: NlMessage): LinkInfo {
  const index = m.body.readInt32LE(4);
  const flags = m.body.readUInt32LE(8);
  const at = parseAttrs(m.body.subarray(16));
  const info = at.get(IFLA_LINKINFO);
  const li = info ? parseAttrs(info) : undefined;
  const kind = cstr(li?.get(IFLA_INFO_KIND));
  const u32at = (b: Buffer | undefined) => (b && b.length >= 4 ? b.readUInt32LE(0) : undefined);
  const link: LinkInfo = {
    index,
    name: cstr(at.get(IFLA_IFNAME)) ?? '',
    flags,
    up: (flags & IFF_UP) !== 0,
    mtu: u32at(at.get(IFLA_MTU)),
    mac: at.get(IFLA_ADDRESS),
    kind,
    master: u32at(at.get(IFLA_MASTER)),
    parent: u32at(at.get(IFLA_LINK)),
    parentNetnsid: at.get(IFLA_LINK_NETNSID)?.length === 4 ? at.get(IFLA_LINK_NETNSID)!.readInt32LE(0) : undefined,
    alias: cstr(at.get(IFLA_IFALIAS)),
  };
  const devName = cstr(at.get(IFLA_PARENT_DEV_NAME));
  const busName = cstr(at.get(IFLA_PARENT_DEV_BUS_NAME));
  if (devName !== undefined && busName !== undefined) link.parentDev = { bus: busName, name: devName };
  if (kind === 'vlan' && li?.get(IFLA_INFO_DATA)) {
    const vid = parseAttrs(li.get(IFLA_INFO_DATA)!).get(IFLA_VLAN_ID);
    if (vid && vid.length >= 2) link.vlanId = vid.readUInt16LE(0);
  }
  if (kind === 'tun' && li?.get(IFLA_INFO_DATA)) {
    const td = parseAttrs(li.get(IFLA_INFO_DATA)!);
    const flag = (t: number) => td.get(t)?.[0] === 1;
    link.tun = {
      owner: u32at(td.get(IFLA_TUN_OWNER)),
      group: u32at(td.get(IFLA_TUN_GROUP)),
      type: td.get(IFLA_TUN_TYPE)?.[0],
      persist: flag(IFLA_TUN_PERSIST),
      multiQueue: flag(IFLA_TUN_MULTI_QUEUE),
      queues: u32at(td.get(IFLA_TUN_NUM_QUEUES)),
      disabledQueues: u32at(td.get(IFLA_TUN_NUM_DISABLED_QUEUES)),
    };
  }
  return link;
}

/** One link by name or index; null if there is none. */
export function getLink(nl: Netlink, which: string | number): LinkInfo | null {
  const body = Buffer.concat([ifinfomsg(typeof which === 'number' ? which : 0), ...(typeof which === 'string' ? [str(IFLA_IFNAME, which)] : []), u32(IFLA_EXT_MASK, 1)]);
  try {
    return decodeLink(nl.get(RTM_GETLINK, body, `look up link ${which}`));
  } catch (e) {
    if (e instanceof SysError && e.code === 'ENODEV') return null;
    throw e;
  }
}

/** Every link of the socket's namespace. */
export function dumpLinks(nl: Netlink): LinkInfo[] {
  return nl.dump(RTM_GETLINK, Buffer.concat([ifinfomsg(0), u32(IFLA_EXT_MASK, 1)]), 'list links').filter((m) => m.type === RTM_NEWLINK).map(decodeLink);
}

