// Who holds a macvtap: a macvtap is not tied to its fds (the kernel keeps
// it until it is deleted), so its lease ends when no process holds an fd
// of the private device node mkmacvtap opened its queues through. That
// node is root's (mode 0600) and unlinked before any fd is handed on: the
// only references to it are those fds, and once none is left nothing can
// open it again. Every process's fds are read from /proc: the magic link's
// target (no filesystem is asked: a FUSE file cannot stall the scan) and,
// for a deleted file, its fdinfo (mnt_id, ino). A holder cannot hide an fd
// from this and keep the lease: an fd it hides (in flight in a unix
// socket, registered with io_uring, given to vhost-net and closed) is not
// seen, so the lease ends (docs/security.md, "macvtap leases").
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

/** The "<mnt_id>.<ino>" an fdinfo text names, or null. */
export function fdinfoNode(text: string): string | null {
  const mnt = /^mnt_id:\s*([0-9]+)$/m.exec(text)?.[1];
  const ino = /^ino:\s*([0-9]+)$/m.exec(text)?.[1];
  return mnt !== undefined && ino !== undefined ? `${mnt}.${ino}` : null;
}

/** The node an fd of this process is open on ("<mnt_id>.<ino>"). */
export function nodeOfFd(fd: number): string {
  const node = fdinfoNode(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  if (node === null) throw new Error(`/proc/self/fdinfo/${fd}: no mnt_id or ino`);
  return node;
}

function list(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return []; // gone, or not ours to see
  }
}

/** Every "<mnt_id>.<ino>" of a deleted file some process (that this one can see) has open. */
export function heldDeletedNodes(): Set<string> {
  const held = new Set<string>();
  for (const pid of list('/proc')) {
    if (!/^[0-9]+$/.test(pid)) continue;
    for (const fd of list(`/proc/${pid}/fd`)) {
      try {
        if (!readlinkSync(`/proc/${pid}/fd/${fd}`).endsWith(' (deleted)')) continue;
        const node = fdinfoNode(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
        if (node !== null) held.add(node);
      } catch {
        // closed meanwhile, or the process is gone
      }
    }
  }
  return held;
}
