// Opening a macvtap's queues safely. /dev/tap<ifindex> is not the device:
// devtmpfs is global, ifindex is per network namespace, and a second
// macvtap with the same ifindex in another namespace gets no node of its
// own, so /dev/tapN may be another namespace's device
// (notes/antispoof-macvtap-dhcp.md, E8). Instead, on the main thread and in
// the macvtap's own namespace: a sysfs mounted there (a sysfs mount shows
// the devices of its mounter's network namespace) gives the device's
// major:minor; a root-only node made for it in a root-only directory is
// opened once per queue and unlinked; each fd is checked (a character
// device of that number, attached to the macvtap of that name). The node
// is "<mnt_id>.<ino>" in the lease record: its holders are the lease's
// (@netgrant/lease holders.ts). What a kill leaves in the directory (a
// mount, a node) is removed by the next mkmacvtap.
import {
  InputError, SysError, mount, umount, mknodChar, makedev, open, closeQuietly, tunGetIff, tunSetIff,
  MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MNT_DETACH, O_RDWR, IFF_TAP, IFF_NO_PI, IFF_VNET_HDR,
} from '@netgrant/core';
import { LEASE_DIR, nodeOfFd } from '@netgrant/lease';
import { fstatSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs';

export const NODE_DIR = `${LEASE_DIR}/macvtap`;

const errno = (e: unknown) => Math.abs((e as NodeJS.ErrnoException).errno ?? 5);

function checkedDir(path: string, mode: number, forbidden = 0o077): void {
  try {
    mkdirSync(path, { mode });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new SysError(`create ${path}`, errno(e));
  }
  const st = lstatSync(path);
  if (!st.isDirectory()) throw new InputError(`${path}: not a directory`);
  if (st.uid !== 0) throw new InputError(`${path}: owned by uid ${st.uid}, not root`);
  if (st.mode & forbidden) throw new InputError(`${path}: open to group or others (mode ${(st.mode & 0o7777).toString(8)})`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Remove what a killed mkmacvtap left: its sysfs mount point and its node. */
function removeLeftovers(): void {
  for (const entry of readdirSync(NODE_DIR)) {
    const m = /^([0-9]+)(\.node)?$/.exec(entry);
    if (!m || Number(m[1]) === process.pid || alive(Number(m[1]))) continue;
    const path = `${NODE_DIR}/${entry}`;
    if (m[2]) {
      unlinkSync(path);
      continue;
    }
    try {
      umount(path, MNT_DETACH);
    } catch {
      // not a mount any more
    }
    rmdirSync(path);
  }
}

/** The macvtap's char device number, from a sysfs of this thread's namespace. */
function deviceNumber(ifname: string, ifindex: number): { major: number; minor: number } {
  const mnt = `${NODE_DIR}/${process.pid}`;
  checkedDir(mnt, 0o700);
  let text: string;
  try {
    mount('sysfs', mnt, 'sysfs', MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
    try {
      const path = `${mnt}/class/net/${ifname}/macvtap/tap${ifindex}/dev`;
      try {
        text = readFileSync(path, 'utf8');
      } catch (e) {
        throw new SysError(`read the device number of ${ifname}`, errno(e));
      }
    } finally {
      umount(mnt, MNT_DETACH);
    }
  } finally {
    rmdirSync(mnt);
  }
  const m = /^([0-9]{1,10}):([0-9]{1,10})\n?$/.exec(text);
  if (!m) throw new SysError(`read the device number of ${ifname}`, 5 /* EIO */, `unexpected ${JSON.stringify(text)}`);
  return { major: Number(m[1]), minor: Number(m[2]) };
}

export interface Queues {
  fds: number[];
  /** "<mnt_id>.<ino>" of the node they were opened through. */
  node: string;
}

/**
 * Open `queues` queues of the macvtap ifname (index ifindex) of this
 * thread's namespace, with or without a vnet header; close-on-exec fds.
 * Throws leaving nothing open and no node.
 */
export function openQueues(ifname: string, ifindex: number, queues: number, vnetHdr: boolean): Queues {
  checkedDir(LEASE_DIR, 0o755, 0o022);
  checkedDir(NODE_DIR, 0o700);
  removeLeftovers();
  const { major, minor } = deviceNumber(ifname, ifindex);
  const path = `${NODE_DIR}/${process.pid}.node`;
  mknodChar(path, 0o600, major, minor);
  const fds: number[] = [];
  try {
    try {
      for (let i = 0; i < queues; i++) fds.push(open(path, O_RDWR));
    } finally {
      unlinkSync(path);
    }
    for (const fd of fds) {
      const st = fstatSync(fd);
      if (!st.isCharacterDevice() || st.rdev !== makedev(major, minor)) throw new SysError(`open ${ifname}'s device`, 19 /* ENODEV */, 'not its character device');
      const attached = tunGetIff(fd).name;
      if (attached !== ifname) throw new SysError(`open ${ifname}'s device`, 19, `attached to ${JSON.stringify(attached)}`);
      // Every queue starts with a vnet header (tap_open); without --vnet-hdr, none.
      tunSetIff(fd, '', IFF_TAP | IFF_NO_PI | (vnetHdr ? IFF_VNET_HDR : 0));
    }
    return { fds, node: nodeOfFd(fds[0]!) };
  } catch (e) {
    for (const fd of fds) closeQuietly(fd);
    throw e;
  }
}
