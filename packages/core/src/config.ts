// Configuration files that grant privilege: opened once (never through a
// symlink), checked on the open fd — a regular file, owned by root, not
// writable by group or others, optionally on a given filesystem — and read
// from that same fd. The path is first opened O_PATH, which has no side
// effects (a FIFO would block an O_RDONLY open forever, a device would run
// its open handler); only a file that passed the checks is opened for
// reading, through /proc/self/fd, so it is the same inode.
import { fstatSync, lstatSync, readFileSync, statSync, type Stats } from 'node:fs';
import { InputError, SysError } from './errors.js';
import { open, closeQuietly, O_RDONLY, O_NOFOLLOW, O_PATH } from './fd.js';

export interface TrustedFile {
  fd: number;
  stat: Stats;
  text: string;
}

export interface TrustOptions {
  /** The file must be on the same filesystem (st_dev) as this path. */
  sameFilesystemAs?: string;
}

/** Why a file with this stat may not grant privilege, or null. */
export function untrustedReason(st: Stats): string | null {
  if (st.isSymbolicLink()) return 'is a symbolic link';
  if (!st.isFile()) return 'not a regular file';
  if (st.uid !== 0) return `owned by uid ${st.uid}, not root`;
  if (st.mode & 0o022) {
    const who = [st.mode & 0o020 ? 'group' : '', st.mode & 0o002 ? 'others' : ''].filter(Boolean).join(' and ');
    return `writable by ${who} (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`;
  }
  return null;
}

/**
 * Open path for reading only if `reason` finds nothing wrong with what it
 * names: checked on an O_PATH fd first (extraFlags: O_NOFOLLOW to judge a
 * symlink itself), so a FIFO, device or socket is never opened, then
 * reopened through /proc/self/fd (the same inode). InputError with the
 * reason, SysError if it cannot be opened.
 */
export function openChecked(path: string, extraFlags: number, reason: (st: Stats) => string | null): { fd: number; stat: Stats } {
  const pathFd = open(path, O_PATH | extraFlags);
  try {
    const why = reason(fstatSync(pathFd));
    if (why) throw new InputError(`${path}: ${why}`);
    let fd: number;
    try {
      fd = open(`/proc/self/fd/${pathFd}`, O_RDONLY);
    } catch (e) {
      throw e instanceof SysError ? new SysError(`open ${path}`, e.errno) : e;
    }
    return { fd, stat: fstatSync(fd) };
  } finally {
    closeQuietly(pathFd);
  }
}

/**
 * Open and check a privileged configuration file; the caller closes `fd`
 * (keep it open to hold a lock on it). Any failed check is an InputError
 * (exit 100) naming the reason.
 */
export function openTrustedFile(path: string, opts: TrustOptions = {}): TrustedFile {
  // O_PATH|O_NOFOLLOW on a symlink gives an fd for the link itself: refused.
  const { fd, stat } = openChecked(path, O_NOFOLLOW, untrustedReason);
  try {
    if (opts.sameFilesystemAs !== undefined && statSync(opts.sameFilesystemAs).dev !== stat.dev) {
      throw new InputError(`${path}: not on the same filesystem as ${opts.sameFilesystemAs}`);
    }
    const text = readFileSync(fd, 'utf8');
    return { fd, stat, text };
  } catch (e) {
    closeQuietly(fd);
    throw e;
  }
}

/**
 * Does path still name the file opened as `opened`? A file locked through
 * its fd may have been renamed over meanwhile; a second process opening
 * the path then locks another inode, and the lock no longer serialises them.
 */
export function stillAt(path: string, opened: Stats): boolean {
  try {
    const now = lstatSync(path);
    return now.dev === opened.dev && now.ino === opened.ino;
  } catch {
    return false;
  }
}
