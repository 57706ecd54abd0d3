// A scratch network namespace: where a creator makes a link and gives it
// its record before the link appears where it counts. The kernel sets no
// alias (IFLA_IFALIAS) in the request that creates a link, so a link made
// in place and killed before its record is set would stay there with no
// record: nobody's to delete. Made in a namespace of its own (its lower
// device stays where it is: IFLA_NET_NS_FD in the create), recorded there,
// then moved: a kill before the move takes the scratch namespace, and the
// link with it (a virtual link dies with its namespace).
import { CLONE_NEWNET, Netlink, close, currentNetns, setns, unshareNet } from '@netgrant/core';

/**
 * fn with a new, empty network namespace (scratch: its fd; nl: a socket of
 * it) and dest, the namespace this thread is in (and stays in). The scratch
 * namespace goes when fn returns, with whatever is left in it. Needs
 * CAP_SYS_ADMIN (unshare, setns back).
 */
export function viaScratchNetns<T>(fn: (scratch: number, nl: Netlink, dest: number) => T): T {
  const dest = currentNetns();
  let scratch: number | undefined;
  let nl: Netlink | undefined;
  try {
    unshareNet();
    try {
      scratch = currentNetns();
      nl = Netlink.open();
    } finally {
      setns(dest, CLONE_NEWNET);
    }
    return fn(scratch, nl, dest);
  } finally {
    nl?.close();
    if (scratch !== undefined) close(scratch);
    close(dest);
  }
}
