// Kernel state a test checks after a run: the tun/tap devices of a network
// namespace and the flock locks on a file (by inode), from /proc/locks.
import { readFileSync, statSync } from 'node:fs';
import { sh } from './harness.js';

export interface TunLink {
  name: string;
  persist: boolean;
  /** The owner ip reports ("user nobody"), or undefined. */
  user: string | undefined;
}

/** The tun/tap devices in the test's namespace, or in /run/netns/NAME. */
export function tunLinks(netns?: string): TunLink[] {
  const r = sh(`ip ${netns ? `-n ${netns} ` : ''}-d -j link show type tun`);
  if (r.status !== 0) throw new Error(`ip link show: ${r.stderr}`);
  const links = JSON.parse(r.stdout || '[]') as { ifname: string; linkinfo?: { info_data?: { persist?: boolean; user?: string } } }[];
  return links.map((l) => ({ name: l.ifname, persist: l.linkinfo?.info_data?.persist === true, user: l.linkinfo?.info_data?.user }));
}

/** The inode of a file, a namespace (/proc/self/ns/net, /run/netns/NAME) included. */
export function inodeOf(path: string): number {
  return statSync(path).ino;
}

/** Lines of /proc/locks on a file with this inode (any holder). */
export function locksOn(ino: number): string[] {
  return readFileSync('/proc/locks', 'utf8').split('\n').filter((l) => / [0-9a-f]+:[0-9a-f]+:(\d+) /.exec(l)?.[1] === String(ino));
}

/** Lines of /proc/locks on the file at path (matched by device and inode), none if it does not exist. */
export function locksOnFile(path: string): string[] {
  let id: string;
  try {
    const st = statSync(path);
    const major = (st.dev >> 8) & 0xfff;
    const minor = (st.dev & 0xff) | ((st.dev >> 12) & 0xfff00);
    id = `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}:${st.ino}`;
  } catch {
    return [];
  }
  return readFileSync('/proc/locks', 'utf8').split('\n').filter((l) => l.replace('->', '').trim().split(/\s+/)[5] === id);
}
