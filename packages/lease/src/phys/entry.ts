// Physical-interface leases (mkphys): a host NIC moved whole into a
// client's namespace. Its record is an entry in a root-only directory
// (/run/netgrant/phys, root 0700), keyed by the device the NIC belongs to
// (its bus and name: "pci-0000:00:04.0"), which no one can change: the
// netdev's name, MAC and MTU are the lessee's to set while it holds it, and
// a record on the netdev (its alias) is too, in a namespace the lessee owns.
// The entry holds what the host had set (name, MTU, MAC, up), written before
// the move; it lives exactly until the NIC is seen back in the namespace it
// was leased from and restored (restore.ts). While it lives the NIC is
// leased: a second request is refused.
import { InputError, SysError, macText, parseMac } from '@netgrant/core';
import { mkdirSync, lstatSync, readFileSync, readdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { LEASE_DIR } from '../lock.js';

export const PHYS_DIR = `${LEASE_DIR}/phys`;

export interface PhysEntry {
  by: string;
  uid: number;
  /** The device's bus and name (IFLA_PARENT_DEV_BUS_NAME, IFLA_PARENT_DEV_NAME). */
  bus: string;
  dev: string;
  /** What the host had set before the move. */
  name: string;
  mtu: number;
  mac: string;
  up: boolean;
}

const PREFIX = 'netgrant1 phys ';
const DEV_PART = /^[A-Za-z0-9_.:-]{1,64}$/;
const WORD = /^[a-z][a-z0-9-]{0,31}$/;
const NAME = /^[^\s/:]{1,15}$/;

/** The entry's file name: "<bus>-<dev>" (InputError if either is not a plain sysfs name). */
export function physKey(bus: string, dev: string): string {
  if (!DEV_PART.test(bus) || !DEV_PART.test(dev) || bus.includes('-')) throw new InputError(`device ${JSON.stringify(`${bus}/${dev}`)}: not a name a lease can be kept under`);
  return `${bus}-${dev}`;
}

export function formatPhysEntry(e: PhysEntry): string {
  return `${PREFIX}by=${e.by} uid=${e.uid} bus=${e.bus} dev=${e.dev} name=${e.name} mtu=${e.mtu} mac=${e.mac} up=${e.up ? 1 : 0}\n`;
}

export function parsePhysEntry(text: string): PhysEntry | null {
  if (!text.startsWith(PREFIX) || !text.endsWith('\n') || text.indexOf('\n') !== text.length - 1) return null;
  const f = new Map<string, string>();
  for (const w of text.slice(PREFIX.length, -1).split(' ')) {
    const eq = w.indexOf('=');
    if (eq <= 0 || f.has(w.slice(0, eq))) return null;
    f.set(w.slice(0, eq), w.slice(eq + 1));
  }
  const [by, uid, bus, dev, name, mtu, mac, up] = ['by', 'uid', 'bus', 'dev', 'name', 'mtu', 'mac', 'up'].map((k) => f.get(k) ?? '');
  if (f.size !== 8 || !WORD.test(by!) || !/^[0-9]{1,10}$/.test(uid!) || !DEV_PART.test(bus!) || !DEV_PART.test(dev!) || !NAME.test(name!)) return null;
  if (!/^[0-9]{1,7}$/.test(mtu!) || !parseMac(mac!) || (up !== '0' && up !== '1')) return null;
  return { by: by!, uid: Number(uid), bus: bus!, dev: dev!, name: name!, mtu: Number(mtu), mac: macText(parseMac(mac!)!)!, up: up === '1' };
}

const errno = (e: unknown) => Math.abs((e as NodeJS.ErrnoException).errno ?? 5);

/** The directory, checked (root's, 0700, not a symlink); created by root if missing. */
export function checkPhysDir(dir = PHYS_DIR): void {
  try {
    if (process.geteuid?.() === 0) mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new SysError(`create ${dir}`, errno(e));
  }
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new InputError(`${dir}: not a directory`);
  if (st.uid !== 0) throw new InputError(`${dir}: owned by uid ${st.uid}, not root`);
  if (st.mode & 0o077) throw new InputError(`${dir}: open to group or others (mode ${(st.mode & 0o7777).toString(8)}), must be 0700`);
}

/** Every entry (a file not in the form written here stops the caller: the administrator is told). Under the lease lock. */
export function physEntries(dir = PHYS_DIR): PhysEntry[] {
  const out: PhysEntry[] = [];
  for (const name of readdirSync(dir)) {
    if (name.startsWith('.') && name.endsWith('.new')) {
      unlinkSync(`${dir}/${name}`); // half-written by a holder of the lock that is gone
      continue;
    }
    const e = parsePhysEntry(readFileSync(`${dir}/${name}`, 'latin1'));
    if (!e || physKey(e.bus, e.dev) !== name) throw new InputError(`${dir}/${name}: not a physical-interface lease entry`);
    out.push(e);
  }
  return out;
}

/** Write an entry atomically. Under the lease lock. */
export function writePhysEntry(e: PhysEntry, dir = PHYS_DIR): void {
  const key = physKey(e.bus, e.dev);
  writeFileSync(`${dir}/.${key}.new`, formatPhysEntry(e), { mode: 0o600 });
  renameSync(`${dir}/.${key}.new`, `${dir}/${key}`);
}

export function removePhysEntry(e: PhysEntry, dir = PHYS_DIR): void {
  unlinkSync(`${dir}/${physKey(e.bus, e.dev)}`);
}
