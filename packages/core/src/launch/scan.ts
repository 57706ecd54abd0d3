// Every network namespace this process can see through /proc (each once),
// visited on the main thread: setns in, run fn with a netlink socket of
// that namespace, setns back. Used to find addresses and launched
// interfaces in other namespaces (macvlan has no kernel duplicate check).
import { readdirSync, fstatSync } from 'node:fs';
import { openNamespace, setns, currentNetns, CLONE_NEWNET } from '../ns.js';
import { close } from '../fd.js';
import { withNetlink, type Netlink } from '../rtnl/socket.js';

export function forEachNamespace(fn: (nl: Netlink) => void): void {
  const home = currentNetns();
  const homeId = fstatSync(home).ino;
  const seen = new Set<number>([homeId]);
  try {
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
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
        setns(fd, CLONE_NEWNET);
        try {
          withNetlink(fn);
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
