// Configuration files that grant privilege: opened once (never through a
// symlink), checked on the open fd — a regular file, owned by root, not
// writable by group or others, optionally on a given filesystem — and read
// from that same fd.
import { fstatSync, readFileSync, statSync, type Stats } from 'node:fs';
import { InputError, SysError } from './errors.js';
import { open, closeQuietly, O_RDONLY, O_NOFOLLOW } from './fd.js';

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
  if (!st.isFile()) return 'not a regular file';
  if (st.uid !== 0) return `owned by uid ${st.uid}, not root`;
  if (st.mode & 0o022) {
    const who = [st.mode & 0o020 ? 'group' : '', st.mode & 0o002 ? 'others' : ''].filter(Boolean).join(' and ');
    return `writable by ${who} (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`;
  }
  return null;
}

/**
 * Open and check a privileged configuration file; the caller closes `fd`
 * (keep it open to hold a lock on it). Any failed check is an InputError
 * (exit 100) naming the reason.
 */
export function openTrustedFile(path: string, opts: TrustOptions = {}): TrustedFile {
  let fd: number;
  try {
    fd = open(path, O_RDONLY | O_NOFOLLOW);
  } catch (e) {
    if (e instanceof SysError && e.code === 'ELOOP') throw new InputError(`${path}: is a symbolic link`);
    throw e;
  }
  try {
    const stat = fstatSync(fd);
    const why = untrustedReason(stat);
    if (why) throw new InputError(`${path}: ${why}`);
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
