// Every network namespace this process can see through /proc (each once),
// visited on the main thread: setns in, run fn with a netlink socket of
// that namespace (and the namespace's fd), setns back. With trustedOnly,
// namespaces a user owns (trust.ts) are skipped before anything is read
// from them: their records are forgeable and never count. A namespace
// already seen or skipped is told by its link (`net:[INO]`) and never
// opened: an open of a process's namespace can wait on the process's exit
// (seen: 0.33 s, under the lease lock, in the launcher soak). The home
// namespace is opened once for the whole walk (core's inNetns would open
// it again for each namespace visited).
import { openNamespace, setns, currentNetns, CLONE_NEWNET, close, withNetlink, type Netlink } from '@netgrant/core';
import { readdirSync, readlinkSync, fstatSync } from 'node:fs';
import { netnsTrusted } from '../trust.js';

/** The inode a /proc/PID/ns/net link names, or null (gone, not ours to see, or not that form). */
function linkedIno(path: string): string | null {
  try {
    return /^net:\[([0-9]+)\]$/.exec(readlinkSync(path))?.[1] ?? null;
  } catch {
    return null;
  }
}

export function forEachNamespace(fn: (nl: Netlink, fd: number) => void, opts: { trustedOnly?: boolean; skip?: ReadonlySet<string> } = {}): void {
  const home = currentNetns();
  const homeId = fstatSync(home).ino;
  const seen = new Set<number>([homeId]);
  try {
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      const named = linkedIno(`/proc/${pid}/ns/net`);
      if (named === null || seen.has(Number(named)) || opts.skip?.has(named)) continue;
      let fd: number;
      try {
        fd = openNamespace(`/proc/${pid}/ns/net`);
      } catch {
        continue; // gone, or not ours to see
      }
      try {
        const ino = fstatSync(fd).ino;
        if (seen.has(ino)) continue;
        seen.add(ino);
        if (opts.skip?.has(String(ino))) continue;
        if (opts.trustedOnly && !netnsTrusted(fd)) continue;
        setns(fd, CLONE_NEWNET);
        try {
          withNetlink((nl) => fn(nl, fd));
        } finally {
          setns(home, CLONE_NEWNET);
        }
      } finally {
        close(fd);
      }
    }
  } finally {
    close(home);
  }
}
