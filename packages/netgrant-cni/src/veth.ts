// Kind veth, rootful: the routed veth of mkveth (lease/veth), its inside
// end in the container's namespace (CNI_NETNS, checked as -N checks a
// client's, without an owner: the runtime is root) and its host end, with
// the record keyed by the attachment, in the plugin's namespace. The pool
// is the administrator's mkveth configuration ("config", default
// /etc/netgrant/veth.conf), read as mkveth reads it.
import { Netlink, closeQuietly, inNetns } from '@netgrant/core';
import { checkClientNetns, delVethAttachment, findVethAttachment, gcVethAttachments, launchVeth, launcherPrivileges, parseVethConfig, dropLauncherCaps, type VethConfig } from '@netgrant/lease';
import { readPool } from './pool.js';
import { CniError, CODE, openNetns, type CniEnv, type NetConf } from './spec.js';
import { checkInterface, checkPrevAddresses } from './check.js';
import type { Attached } from './result.js';

const DEFAULT_CONFIG = '/etc/netgrant/veth.conf';
const LOCK_WAIT_MS = 10000;

/** The pool: the configuration file the network names (checked as mkveth checks -c). */
export function vethPool(conf: NetConf): VethConfig {
  const { pool, path } = readPool(conf, DEFAULT_CONFIG, parseVethConfig);
  if (pool.bridge !== undefined) throw new CniError(CODE.invalidConfig, `${path}: bridge: netgrant-cni's veth is routed only`);
  return pool;
}

/** The container's namespace from CNI_NETNS: a network namespace, never this one. */
export function openContainerNetns(path: string): number {
  const ns = openNetns(path);
  try {
    checkClientNetns(ns, undefined, true);
  } catch (e) {
    closeQuietly(ns);
    throw new CniError(CODE.invalidEnv, 'CNI_NETNS: the plugin\'s own network namespace', path.slice(0, 200));
  }
  return ns;
}

/** DEL's CNI_NETNS: undefined if it is gone (and what was in it with it). */
export function containerNetnsIfThere(path: string): number | undefined {
  try {
    return openContainerNetns(path);
  } catch (e) {
    if (e instanceof CniError && /ENOENT|No such file/.test(e.message)) return undefined;
    throw e;
  }
}

export function addVeth(env: CniEnv, conf: NetConf, key: string): Attached {
  const config = vethPool(conf);
  const ns = openContainerNetns(env.netns);
  const priv = launcherPrivileges();
  try {
    const l = launchVeth({ ifname: env.ifname, config, masquerade: false, forwards: [], target: ns, uid: process.getuid!(), lockWaitMs: LOCK_WAIT_MS, withCap: priv.with, done: priv.done, cni: key });
    return { hostIf: l.hostIf, hostMac: l.hostMac, ifname: l.ifname, mac: l.mac, netns: env.netns, addresses: l.addresses, gateways: l.gateways };
  } finally {
    dropLauncherCaps(priv);
    closeQuietly(ns);
  }
}

/** DEL: the attachment's pair, if there is one (the namespace may be gone, or DEL repeated). The runtime's (uid 0's) attachments only. */
export function delVeth(key: string): void {
  delVethAttachment(process.getuid!(), key);
}

/** GC: every attachment of network not in valid (keys), of the runtime's uid only (a service's are its users'); the keys removed. */
export function gcVeth(network: string, valid: ReadonlySet<string>): string[] {
  return gcVethAttachments(process.getuid!(), network, valid);
}

/** CHECK: the host end is there, up, with the record's addresses; the container's interface is there, up, with them. */
export function checkVeth(env: CniEnv, key: string, expected: string[] | undefined): void {
  const lease = findVethAttachment(process.getuid!(), key);
  if (!lease) throw new CniError(CODE.unknownContainer, 'no such attachment', key);
  const addrs = lease.record.addrs ?? [];
  if (!lease.link.up) throw new CniError(CODE.system, `host end ${lease.link.name} is down`);
  checkPrevAddresses(expected, addrs, 'lease');
  const ns = openContainerNetns(env.netns);
  let inside: Netlink;
  try {
    inside = inNetns(ns, () => Netlink.open());
  } finally {
    closeQuietly(ns);
  }
  try {
    checkInterface(inside, env.ifname, 'veth', addrs, `no veth ${env.ifname} in CNI_NETNS`);
  } finally {
    inside.close();
  }
}
