// The launched-namespace registry: what the launchers (mkmacvlan, mkipvlan)
// count and exclude. One entry per launch in a root-only directory
// (/run/netgrant/launched, root 0700: no user can read, write, lock or
// delete one), written under the lease lock before the launch's addresses
// exist, and removed only once the kernel says the namespace is gone. So a
// launch counts against its user and holds its addresses for exactly as
// long as its namespace lives, however the user keeps it alive (its
// processes, an fd, a bind mount in another mount namespace, a socket).
//
// Liveness (docs/architecture.md, "The launched-namespace registry"):
//
// - Each launched namespace gets a namespace id (nsid) in the launcher's
//   own namespace (RTM_NEWNSID), written in its entry. The kernel drops the
//   id when the namespace's last reference goes, and refuses to look up a
//   dying one; an id refers to no reference count, so it never keeps a
//   namespace alive. Only a holder of CAP_NET_ADMIN over the launcher's
//   namespace (root) can give a namespace an id there, and nobody can
//   remove one.
// - Ids are reused (the lowest free one). So an entry is live only if the
//   namespace that now has its id holds the entry's interface: the lease
//   record in its IFLA_IFALIAS (with the macvlan's MAC, random per launch),
//   read from the launcher's namespace through IFLA_TARGET_NETNSID. Nobody
//   but root can write that alias there (the namespace is owned by the
//   initial user namespace). And an entry is keyed by its id: a new launch
//   given a reused id replaces the old (dead) entry by construction.
// - A macvlan's MAC also sits on its parent's unicast list while it is up,
//   including the moments after the namespace's last reference is gone and
//   before the kernel has torn down its devices: an entry whose MAC is still
//   there is kept, so an address is never handed out while a dying
//   namespace's interface still has it.
import { readdirSync, readFileSync, writeFileSync, renameSync, unlinkSync, lstatSync, mkdirSync, fstatSync } from 'node:fs';
import { InputError, SysError, close, currentNetns, macText, type Netlink } from '@netgrant/core';
import { LEASE_DIR } from './lock.js';
import { cniOk, formatRecord } from './record.js';

/** The inode of this thread's network namespace (the refs' "<ino>"). */
export function homeNetnsIno(): string {
  const home = currentNetns();
  try {
    return String(fstatSync(home).ino);
  } finally {
    close(home);
  }
}

export const LAUNCHED_DIR = `${LEASE_DIR}/launched`;

export interface LaunchEntry {
  /** The launcher (a program name). */
  by: string;
  uid: number;
  /** "<launcher's netns inode>.<parent ifindex>" (as in the lease record). */
  parent: string;
  /** The launched namespace's id in the launcher's namespace. */
  nsid: number;
  /** Its nsfs inode (unique among live namespaces: a live entry's namespace is never another's); absent in entries of an older netgrant. */
  ino?: string;
  /** The macvlan's MAC (absent for ipvlan, which shares its parent's). */
  mac?: string;
  /** addr/prefix, every address the launch has or is about to have. */
  addresses: string[];
  /** A namespace of the client's (-N): keyed by ino, live by its id alone. */
  client?: boolean;
  /** Client entries: when (CLOCK_BOOTTIME seconds) a reconcile first saw the id gone. */
  gone?: number;
  /** A service's CNI attachment (--cni): its key, "NETWORK/CONTAINERID/IFNAME" (cniKey), the uid's. */
  cni?: string;
}

/** How long a client entry outlives its id (the dying namespace's devices go after it). */
export const TOMBSTONE_SECONDS = 10;

const ENTRY_PREFIX = 'netgrant1 launched ';
// <home ino>-<nsid> (a namespace the launcher made), <home ino>-n<ino> (the client's).
const ENTRY_NAME = /^([0-9]{1,20})-(n?)([0-9]{1,20})$/;

/** The lease record an entry's interface carries in its alias. */
export function entryRecord(e: LaunchEntry): string {
  return formatRecord({ kind: 'lease', by: e.by, uid: e.uid, parent: e.parent, ...(e.mac ? { mac: e.mac } : {}), ...(e.cni ? { cni: e.cni } : {}) });
}

function formatEntry(e: LaunchEntry): string {
  return `${ENTRY_PREFIX}by=${e.by} uid=${e.uid} parent=${e.parent} nsid=${e.nsid}${e.ino ? ` ino=${e.ino}` : ''}${e.mac ? ` mac=${e.mac}` : ''} addrs=${e.addresses.join(',')}${e.client ? ' client=1' : ''}${e.gone !== undefined ? ` gone=${e.gone}` : ''}${e.cni !== undefined ? ` cni=${e.cni}` : ''}\n`;
}

function parseEntry(text: string): LaunchEntry | null {
  const line = text.endsWith('\n') ? text.slice(0, -1) : text;
  if (!line.startsWith(ENTRY_PREFIX) || line.includes('\n')) return null;
  const f = new Map<string, string>();
  for (const w of line.slice(ENTRY_PREFIX.length).split(' ')) {
    const eq = w.indexOf('=');
    if (eq <= 0 || f.has(w.slice(0, eq))) return null;
    f.set(w.slice(0, eq), w.slice(eq + 1));
  }
  const by = f.get('by');
  const uid = Number(f.get('uid'));
  const parent = f.get('parent');
  const nsid = Number(f.get('nsid'));
  const mac = f.get('mac');
  const ino = f.get('ino');
  const addrs = f.get('addrs');
  const client = f.get('client');
  const gone = f.get('gone');
  const cni = f.get('cni');
  if (cni !== undefined && (client === undefined || !cniOk(cni))) return null;
  if (client !== undefined && (client !== '1' || ino === undefined)) return null;
  if (gone !== undefined && (client === undefined || !/^[0-9]{1,12}(\.[0-9]{1,2})?$/.test(gone))) return null;
  if (ino !== undefined && !/^[0-9]{1,20}$/.test(ino)) return null;
  if (!by || !/^[a-z][a-z0-9-]{0,31}$/.test(by) || !/^[0-9]{1,10}$/.test(f.get('uid') ?? '') || !parent || !/^[0-9]{1,20}\.[0-9]{1,10}$/.test(parent)) return null;
  if (!/^[0-9]{1,10}$/.test(f.get('nsid') ?? '') || addrs === undefined) return null;
  if (mac !== undefined && !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac)) return null;
  return { by, uid, parent, nsid, ...(ino ? { ino } : {}), ...(mac ? { mac } : {}), addresses: addrs === '' ? [] : addrs.split(','), ...(client ? { client: true } : {}), ...(gone !== undefined ? { gone: Number(gone) } : {}), ...(cni !== undefined ? { cni } : {}) };
}

/**
 * The registry directory, checked: root's, mode 0700 or tighter, not a
 * symlink. Created (0700) if missing, but only by root: a directory a
 * capability-aware launcher made would be its user's.
 */
export function checkRegistryDir(dir = LAUNCHED_DIR): void {
  const root = process.geteuid?.() === 0;
  try {
    if (root) mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code !== 'EEXIST') throw new SysError(`create ${dir}`, Math.abs(err.errno ?? 5));
  }
  let st;
  try {
    st = lstatSync(dir);
  } catch (e) {
    throw new SysError(`open ${dir}`, Math.abs((e as NodeJS.ErrnoException).errno ?? 2), 'not root: the registry must be made by root first (a root launch, or tmpfiles.d)');
  }
  if (!st.isDirectory()) throw new InputError(`${dir}: not a directory`);
  if (st.uid !== 0) throw new InputError(`${dir}: owned by uid ${st.uid}, not root`);
  if (st.mode & 0o077) throw new InputError(`${dir}: open to group or others (mode ${(st.mode & 0o7777).toString(8)}), must be 0700`);
}

const homeOf = (parent: string) => parent.slice(0, parent.indexOf('.'));
const entryName = (e: LaunchEntry) => (e.client ? `${homeOf(e.parent)}-n${e.ino}` : `${homeOf(e.parent)}-${e.nsid}`);

/** Write (or replace: same launcher namespace, same id; for a client's namespace, same inode) an entry, atomically. Under the lease lock. */
export function writeEntry(e: LaunchEntry, dir = LAUNCHED_DIR): void {
  const name = entryName(e);
  const tmp = `${dir}/.${name}.new`;
  writeFileSync(tmp, formatEntry(e), { mode: 0o600, flag: 'w' });
  renameSync(tmp, `${dir}/${name}`);
}

/** Remove an entry whose launch undid itself (its link deleted). Under the lease lock. */
export function removeEntry(e: LaunchEntry, dir = LAUNCHED_DIR): void {
  unlinkSync(`${dir}/${entryName(e)}`);
}

/** CLOCK_BOOTTIME in seconds (/proc/uptime): it counts suspended time, and no one sets it. */
export function bootSeconds(): number {
  const t = Number(readFileSync('/proc/uptime', 'latin1').split(' ')[0]);
  if (!Number.isFinite(t)) throw new SysError('read /proc/uptime', 5 /* EIO */, 'not a number');
  return t;
}

// ------------------------------------------------------------ netlink: nsids, peers' links, the parent's unicast list

const RTM_NEWNSID = 88;
const RTM_GETNSID = 90;
const NETNSA_NSID = 1;
const NETNSA_FD = 3;
const RTM_GETLINK = 18;
const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const IFLA_ADDRESS = 1;
const IFLA_IFALIAS = 20;
const IFLA_EXT_MASK = 29;
const IFLA_TARGET_NETNSID = 46;
const RTM_GETNEIGH = 30;
const RTM_NEWNEIGH = 28;
const NDA_LLADDR = 2;
const PF_BRIDGE = 7;

function nla(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const b = Buffer.alloc((len + 3) & ~3);
  b.writeUInt16LE(len, 0);
  b.writeUInt16LE(type, 2);
  payload.copy(b, 4);
  return b;
}
function nlaU32(type: number, v: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32LE(v >>> 0);
  return nla(type, p);
}
function nlaS32(type: number, v: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeInt32LE(v);
  return nla(type, p);
}
function attrs(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (let off = 0; off + 4 <= buf.length; ) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > buf.length) break;
    out.set(buf.readUInt16LE(off + 2) & 0x3fff, buf.subarray(off + 4, off + len));
    off += (len + 3) & ~3;
  }
  return out;
}
const rtgen = () => Buffer.alloc(4); // struct rtgenmsg (AF_UNSPEC), padded

/**
 * The id of the namespace open at nsFd in nl's namespace, given one first
 * if it has none. The id stays while the namespace lives and takes no
 * reference on it.
 */
export function assignNsid(nl: Netlink, nsFd: number): number {
  try {
    nl.request(RTM_NEWNSID, 0, Buffer.concat([rtgen(), nlaU32(NETNSA_FD, nsFd), nlaS32(NETNSA_NSID, -1)]), 'give the new namespace an id');
  } catch (e) {
    if (!(e instanceof SysError && e.code === 'EEXIST')) throw e; // already has one
  }
  const m = nl.get(RTM_GETNSID, Buffer.concat([rtgen(), nlaU32(NETNSA_FD, nsFd)]), 'get the new namespace\'s id');
  const id = attrs(m.body.subarray(4)).get(NETNSA_NSID);
  const n = id && id.length >= 4 ? id.readInt32LE(0) : -1;
  if (n < 0) throw new SysError('get the new namespace\'s id', 61 /* ENODATA */, 'the kernel assigned none');
  return n;
}

/** Every id nl's namespace has given a peer namespace (the kernel drops one as its namespace dies). */
export function nsids(nl: Netlink): Set<number> {
  const out = new Set<number>();
  for (const m of nl.dump(RTM_GETNSID, rtgen(), 'list namespace ids')) {
    if (m.type !== RTM_NEWNSID) continue;
    const id = attrs(m.body.subarray(4)).get(NETNSA_NSID);
    if (id && id.length >= 4 && id.readInt32LE(0) >= 0) out.add(id.readInt32LE(0));
  }
  return out;
}

/** The links (index, alias and MAC) of the live namespace with id nsid, or null if no live namespace has it. */
function peerLinks(nl: Netlink, nsid: number): { index: number; alias: string | undefined; mac: string | undefined }[] | null {
  const body = Buffer.concat([Buffer.alloc(16), nlaU32(IFLA_EXT_MASK, 1), nlaS32(IFLA_TARGET_NETNSID, nsid)]);
  try {
    return nl.dump(RTM_GETLINK, body, `list links of namespace id ${nsid}`).filter((m) => m.type === RTM_NEWLINK).map((m) => {
      const at = attrs(m.body.subarray(16));
      const a = at.get(IFLA_IFALIAS);
      return { index: m.body.readInt32LE(4), alias: a ? a.toString('latin1').replace(/\0.*$/s, '') : undefined, mac: macText(at.get(IFLA_ADDRESS)) };
    });
  } catch (e) {
    // No (live) namespace has that id: the kernel says EINVAL.
    if (e instanceof SysError && (e.code === 'EINVAL' || e.code === 'ENOENT' || e.code === 'ENODEV')) return null;
    throw e;
  }
}

/**
 * Delete the link of the live namespace with id nsid whose record is
 * alias (a client entry's interface, reached from the launcher's namespace
 * through IFLA_TARGET_NETNSID, whether or not the client's namespace can be
 * opened by a path): whether there was one.
 */
export function deletePeerLink(nl: Netlink, nsid: number, alias: string): boolean {
  const link = peerLinks(nl, nsid)?.find((l) => l.alias === alias);
  if (!link) return false;
  const ifi = Buffer.alloc(16);
  ifi.writeInt32LE(link.index, 4);
  try {
    nl.request(RTM_DELLINK, 0, Buffer.concat([ifi, nlaS32(IFLA_TARGET_NETNSID, nsid)]), `delete link ${link.index} of namespace id ${nsid}`);
  } catch (e) {
    if (e instanceof SysError && (e.code === 'ENODEV' || e.code === 'EINVAL')) return false; // gone with its namespace meanwhile
    throw e;
  }
  return true;
}

/** The MACs on interface index's unicast/multicast lists (the parent's "self" fdb entries). */
function unicastList(nl: Netlink, index: number): Set<string> {
  const ndmsg = Buffer.alloc(12);
  ndmsg.writeUInt8(PF_BRIDGE, 0);
  ndmsg.writeInt32LE(index, 4);
  const out = new Set<string>();
  let dumped;
  try {
    dumped = nl.dump(RTM_GETNEIGH, ndmsg, `list the addresses of link ${index}`);
  } catch (e) {
    // The parent is gone (a VLAN sub-interface deleted with its last lease): nothing is on its list.
    if (e instanceof SysError && (e.code === 'ENODEV' || e.code === 'EINVAL')) return out;
    throw e;
  }
  for (const m of dumped) {
    if (m.type !== RTM_NEWNEIGH || m.body.readInt32LE(4) !== index) continue;
    const mac = macText(attrs(m.body.subarray(12)).get(NDA_LLADDR));
    if (mac) out.add(mac);
  }
  return out;
}

// ------------------------------------------------------------ reconcile

export interface Reconciled {
  /** Every live launch of this launcher namespace. */
  live: LaunchEntry[];
  /** Entries removed because their namespace is gone. */
  removed: number;
}

/**
 * Every entry of the launcher namespace homeIno, checked against the
 * kernel through nl (a socket of that namespace, opened with CAP_NET_ADMIN):
 * the live ones are returned, the dead ones deleted. Entries of other
 * launcher namespaces are left alone (only their own can check them).
 * Under the lease lock.
 */
export function reconcile(nl: Netlink, homeIno: string, dir = LAUNCHED_DIR): Reconciled {
  const live: LaunchEntry[] = [];
  let removed = 0;
  const unicast = new Map<number, Set<string>>();
  let ids: Set<number> | undefined;
  for (const name of readdirSync(dir)) {
    const path = `${dir}/${name}`;
    // A half-written entry: its writer held the lease lock and is gone (we hold it now).
    if (name.startsWith('.') && name.endsWith('.new')) {
      unlinkSync(path);
      continue;
    }
    const m = ENTRY_NAME.exec(name);
    if (!m || m[1] !== homeIno) continue;
    const e = parseEntry(readFileSync(path, 'latin1'));
    // Never written by us in that form: not ours to count or delete; the
    // administrator is told by the launcher's refusal to start.
    if (!e || entryName(e) !== name || homeOf(e.parent) !== homeIno) throw new InputError(`${path}: not a registry entry`);
    if (e.client) {
      // The client's namespace: only the id counts (nothing in there is ours).
      ids ??= nsids(nl);
      if (ids.has(e.nsid) && e.gone === undefined) live.push(e);
      else if (!expire(e, dir)) live.push(e);
      else {
        unlinkSync(path);
        removed++;
      }
      continue;
    }
    const record = entryRecord(e);
    const links = peerLinks(nl, e.nsid);
    let alive = links !== null && links.some((l) => l.alias === record && (e.mac === undefined || l.mac === e.mac));
    if (!alive && e.mac !== undefined) {
      // Dying: no reference left, the kernel not yet done with its devices.
      const index = Number(e.parent.slice(e.parent.indexOf('.') + 1));
      let list = unicast.get(index);
      if (!list) unicast.set(index, (list = unicastList(nl, index)));
      alive = list.has(e.mac);
    }
    if (alive) live.push(e);
    else {
      unlinkSync(path);
      removed++;
    }
  }
  return { live, removed };
}

/**
 * A client entry whose id is gone (or, told by markGone, now names another
 * namespace): true once it has been so for TOMBSTONE_SECONDS, else it is
 * kept (and stamped with when that was first seen).
 */
function expire(e: LaunchEntry, dir: string): boolean {
  if (e.gone === undefined) {
    e.gone = Math.floor(bootSeconds() * 100) / 100;
    writeEntry(e, dir);
    return false;
  }
  return bootSeconds() - e.gone >= TOMBSTONE_SECONDS;
}

/**
 * A live client entry's id now names another namespace (ino): its own
 * namespace is gone, so it becomes a tombstone (still counted, its
 * addresses still held, for TOMBSTONE_SECONDS). Under the lease lock.
 */
export function markGone(e: LaunchEntry, dir = LAUNCHED_DIR): void {
  if (e.client && e.gone === undefined) expire(e, dir);
}
