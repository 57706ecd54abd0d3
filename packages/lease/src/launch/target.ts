// A namespace of the client's (-N NETNSFD, typically from fd-recv in a
// service chain), accepted as mktap -N accepts one: a network namespace,
// owned by a user namespace whose owner is PEERUID (unless the
// administrator says --any-netns), and never the launcher's own. Records
// and accounting stay in the launcher's namespace: the client is root in
// its own and could write anything there.
import { DeniedError, InputError, CLONE_NEWNET, Netlink, checkNamespace, closeQuietly, currentNetns, nsOwnerUid, optFlag, optString, parseFd, peerId, sameNamespace, setns, type Chain, type OptionValues } from '@netgrant/core';
import type { LauncherCap } from './privileges.js';

/** -N and --any-netns, for a launcher's option table. */
export const TARGET_OPTIONS = [
  { name: 'netns-fd', short: 'N', value: true },
  { name: 'any-netns' },
] as const;

/** The client's namespace fd from -N, checked; undefined without -N. */
export function clientNetns(chain: Chain, opts: OptionValues): number | undefined {
  const text = optString(opts, 'netns-fd');
  const any = optFlag(opts, 'any-netns');
  if (text === undefined) {
    if (any) throw new InputError('--any-netns: only with -N');
    return undefined;
  }
  const ns = chain.fds.fd(parseFd(text, '-N'), '-N');
  checkClientNetns(ns, any ? undefined : peerId(chain.env, 'PEERUID'), any);
  return ns;
}

/**
 * The checks on a client's namespace fd, for every creator's -N: a network
 * namespace, not this process's own, and owned by a user namespace whose
 * owner is peer (unless any: the administrator's --any-netns).
 */
export function checkClientNetns(ns: number, peer: number | undefined, any: boolean): void {
  checkNamespace(ns, CLONE_NEWNET, '-N');
  const home = currentNetns();
  try {
    if (sameNamespace(ns, home)) throw new DeniedError('-N: the server\'s own network namespace');
  } finally {
    closeQuietly(home);
  }
  if (any) return;
  if (peer === undefined) throw new InputError('-N: PEERUID not set, so the namespace owner cannot be checked (run peer-check first, or --any-netns)');
  if (nsOwnerUid(ns) !== peer) throw new DeniedError(`-N: the network namespace is not owned by uid ${peer}`);
}

/**
 * A netlink socket of namespace ns (the client's; undefined: the one this
 * thread is in), opened from inside it on this (main) thread, which is back
 * in home before this returns: a creator configures the client's namespace
 * through it and stays home.
 */
export function netlinkIn(ns: number | undefined, home: number, withCap: <T>(cap: LauncherCap, fn: () => T) => T): Netlink {
  return withCap('sys_admin', () => {
    if (ns !== undefined) setns(ns, CLONE_NEWNET);
    try {
      return withCap('net_admin', () => Netlink.open());
    } finally {
      setns(home, CLONE_NEWNET);
    }
  });
}
