// Whose records count: only those in a network namespace that no
// unprivileged user can write to, i.e. one owned by the creator's own user
// namespace (the initial one, for a root service). A namespace owned by a
// user namespace a user made (unshare -Urn) gives that user CAP_NET_ADMIN
// over it, and so the power to write any alias: its records are forgeable
// by construction and never count, for quotas or for address uniqueness.
import { SysError, closeQuietly, currentNetns, nsId, open, userNsOf, O_RDONLY } from '@netgrant/core';

/** Is the network namespace open at fd owned by this thread's own user namespace? */
export function netnsTrusted(fd: number): boolean {
  const own = open('/proc/thread-self/ns/user', O_RDONLY);
  try {
    let owner: number;
    try {
      owner = userNsOf(fd);
    } catch (e) {
      // Owned by a user namespace outside ours (the kernel refuses to name it): not ours.
      if (e instanceof SysError && e.code === 'EPERM') return false;
      throw e;
    }
    try {
      const a = nsId(owner);
      const b = nsId(own);
      return a.dev === b.dev && a.ino === b.ino;
    } finally {
      closeQuietly(owner);
    }
  } finally {
    closeQuietly(own);
  }
}

/** Is this thread's current network namespace trusted (see netnsTrusted)? */
export function currentNetnsTrusted(): boolean {
  const fd = currentNetns();
  try {
    return netnsTrusted(fd);
  } finally {
    closeQuietly(fd);
  }
}
