// The lease lock: every quota decision and every address allocation runs
// under it. It is a root-owned 0600 file in a root-owned directory, so only
// root can open it and so only root can hold it: no user can delay or stop
// a lease by holding a lock (a flock on anything a user can open, such as a
// namespace's nsfs inode or a readable config file, is the user's to hold).
// One lock for the host: a create holds it for a few milliseconds.
import { fstatSync, lstatSync, mkdirSync } from 'node:fs';
import { InputError, SysError, close, lockExclusive, lockExclusiveAsync, open, O_RDWR, O_NOFOLLOW } from '@netgrant/core';

export const LEASE_DIR = '/run/netgrant';
export const LEASE_LOCK = `${LEASE_DIR}/lease.lock`;
const O_CREAT = 0o100;

function checkDir(path: string): void {
  try {
    mkdirSync(path, { mode: 0o755 });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code !== 'EEXIST') throw new SysError(`create ${path}`, Math.abs(err.errno ?? 5));
  }
  const st = lstatSync(path);
  if (!st.isDirectory()) throw new InputError(`${path}: not a directory`);
  if (st.uid !== 0) throw new InputError(`${path}: owned by uid ${st.uid}, not root`);
  if (st.mode & 0o022) throw new InputError(`${path}: writable by group or others (mode ${(st.mode & 0o7777).toString(8)})`);
}

/** Open the lease lock file (created if missing), checked on the fd: root's, mode 0600 or tighter. */
export function openLeaseLock(path = LEASE_LOCK): number {
  checkDir(path.slice(0, path.lastIndexOf('/')) || '/');
  const fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW, 0o600);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new InputError(`${path}: not a regular file`);
    if (st.uid !== 0) throw new InputError(`${path}: owned by uid ${st.uid}, not root`);
    if (st.mode & 0o066) throw new InputError(`${path}: readable or writable by group or others (mode ${(st.mode & 0o7777).toString(8)}): anyone who can open it can hold it`);
  } catch (e) {
    close(fd);
    throw e;
  }
  return fd;
}

/** Run fn holding the lease lock, waiting at most timeoutMs for it (SysError ETIMEDOUT). */
export function withLeaseLock<T>(timeoutMs: number, fn: () => T, path = LEASE_LOCK): T {
  const fd = openLeaseLock(path);
  try {
    lockExclusive(fd, timeoutMs, `lock ${path}`);
    return fn();
  } finally {
    close(fd); // releases the lock
  }
}

/**
 * withLeaseLock for a sweep that can wait for its next round: with
 * timeoutMs 0 one try, and fn is not run (undefined) if another holds the
 * lock; else as withLeaseLock.
 */
export function withLeaseLockOrSkip<T>(timeoutMs: number, fn: () => T, path = LEASE_LOCK): T | undefined {
  const fd = openLeaseLock(path);
  try {
    try {
      lockExclusive(fd, timeoutMs, `lock ${path}`);
    } catch (e) {
      if (timeoutMs === 0 && e instanceof SysError && e.code === 'ETIMEDOUT') return undefined;
      throw e;
    }
    return fn();
  } finally {
    close(fd);
  }
}

/**
 * withLeaseLock for a link that may run inside the resident server: the
 * wait naps through nap (the chain's fds.nap), so it never blocks the event
 * loop and ends by the connection's deadline; fn runs synchronously, under
 * the lock, as before.
 */
export async function withLeaseLockAsync<T>(timeoutMs: number, nap: (ms: number) => Promise<boolean>, fn: () => T, path = LEASE_LOCK): Promise<T> {
  const fd = openLeaseLock(path);
  try {
    await lockExclusiveAsync(fd, timeoutMs, `lock ${path}`, nap);
    return fn();
  } finally {
    close(fd);
  }
}
