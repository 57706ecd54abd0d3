// Kinds macvlan and ipvlan, rootful: the launchers' -N launch (lease's
// launch, as mkmacvlan -N and mkipvlan -N make it) into the container's
// namespace (CNI_NETNS), made on the configuration's parent in the
// plugin's namespace and created there under CNI_IFNAME, with a pool
// address (or delegated IPAM's: ipam.ts) and routes. The pool is the
// administrator's mkmacvlan or mkipvlan configuration ("config", default
// /etc/netgrant/macvlan.conf, ipvlan.conf). The network's keys, as
// Debian's macvlan and ipvlan plugins name them, only ask within it:
// "master" must be the configuration's parent, "mode" its mode line's (else
// the kind's default), "mtu" at most the parent's. The attachment is a
// client entry of the launched-namespace registry with its key (lease
// attachments.ts): the container's namespace may be its user's, whose root
// could forge any record in there.
import { Netlink, closeQuietly, currentNetns, deleteLink, dumpLinks, getLink, ifNameProblem } from '@netgrant/core';
import { IPVLAN_LAUNCHER, MACVLAN_LAUNCHER, dropLauncherCaps, endAttachment, entryRecord, findAttachment, gcAttachments, launch, launcherPrivileges, leasesOf, netlinkIn, parseLaunchConfig, type LaunchConfig, type LauncherSpec } from '@netgrant/lease';
import { fstatSync } from 'node:fs';
import { CniError, CODE, type CniEnv, type NetConf } from './spec.js';
import { checkInterface, checkPrevAddresses } from './check.js';
import type { Attached } from './result.js';
import { readPool } from './pool.js';
import { containerNetnsIfThere, openContainerNetns } from './veth.js';
import { assignedOf, ipamOf, releaseQuietly, runIpam } from './ipam.js';

export type VlanKind = 'macvlan' | 'ipvlan';
const LOCK_WAIT_MS = 10000;

const specOf = (kind: VlanKind): LauncherSpec => (kind === 'macvlan' ? MACVLAN_LAUNCHER : IPVLAN_LAUNCHER);

/** The pool and what the network asks within it, checked before anything is made. */
export function vlanPlan(conf: NetConf, kind: VlanKind): { config: LaunchConfig; mode: string; master?: string; mtu?: number } {
  const spec = specOf(kind);
  const { pool: config } = readPool(conf, spec.defaultConfig, (text, path) => parseLaunchConfig(text, path, spec.modes));
  const allowed = config.mode ?? spec.defaultMode;
  const mode = conf.raw.mode ?? allowed;
  if (mode !== allowed) throw new CniError(CODE.refused, `mode: not allowed by the configuration (${allowed})`, JSON.stringify(mode).slice(0, 40));
  const { master, mtu } = conf.raw;
  if (master !== undefined && (typeof master !== 'string' || ifNameProblem(master) !== null)) throw new CniError(CODE.invalidConfig, 'master: not an interface name', JSON.stringify(master).slice(0, 40));
  if (mtu !== undefined && (typeof mtu !== 'number' || !Number.isInteger(mtu) || mtu < 68 || mtu > 65535)) throw new CniError(CODE.invalidConfig, 'mtu: not a number from 68 to 65535', JSON.stringify(mtu).slice(0, 40));
  return { config, mode: mode as string, ...(master !== undefined ? { master: master as string } : {}), ...(mtu !== undefined ? { mtu: mtu as number } : {}) };
}

export function addVlan(env: CniEnv, conf: NetConf, text: string, key: string, kind: VlanKind): Attached {
  const plan = vlanPlan(conf, kind);
  const ipam = ipamOf(conf, env);
  const ns = openContainerNetns(env.netns);
  try {
    // Before IPAM's ADD: the DEL after a failed ADD would release the live attachment's address.
    if (ipam && findAttachment(process.getuid!(), key, LOCK_WAIT_MS)) throw new CniError(CODE.system, `attachment ${key}`, 'it has an interface already (EEXIST)');
    const delegated = ipam ? assignedOf(runIpam(ipam, 'ADD', env, text)) : undefined;
    const priv = launcherPrivileges();
    try {
      const l = launch({ by: specOf(kind).name, kind, ...plan, ifname: env.ifname, uid: process.getuid!(), lockWaitMs: LOCK_WAIT_MS, withCap: priv.with, done: priv.done, target: ns, cni: key, ...(delegated ? { assigned: delegated.assigned } : {}) });
      // ipvlan l3 and l3s route through the device; macvlan and ipvlan l2 via the gateway.
      const routes = delegated?.routes ?? (kind === 'ipvlan' && plan.mode !== 'l2' ? l.addresses.map((a) => ({ dst: a.includes(':') ? '::/0' : '0.0.0.0/0' })) : undefined);
      return { hostIf: '', hostMac: undefined, ifname: l.ifname, mac: l.mac!, netns: env.netns, addresses: l.addresses, gateways: l.gateways, ...(routes ? { routes } : {}), ...(delegated ? { dns: delegated.dns } : {}) };
    } catch (e) {
      if (ipam) releaseQuietly(ipam, env, text);
      throw e;
    } finally {
      dropLauncherCaps(priv);
    }
  } finally {
    closeQuietly(ns);
  }
}

/** DEL: the attachment's interface and entry, if any (first: nothing of ours stays whatever IPAM says); then IPAM's DEL (released even if the namespace is gone). */
export function delVlan(env: CniEnv, conf: NetConf, text: string, key: string): void {
  endAttachment(process.getuid!(), key, LOCK_WAIT_MS);
  if (env.netns !== '') sweepNetns(env, key);
  const ipam = ipamOf(conf, env);
  if (ipam) runIpam(ipam, 'DEL', env, text);
}

/**
 * An ADD killed between creating the link and writing its entry leaves the
 * link, without its record yet and without an address, and no entry: DEL
 * deletes, in CNI_NETNS, the macvlan or ipvlan that carries the
 * attachment's key, or that is named CNI_IFNAME and carries no record (as
 * Debian's plugins delete CNI_IFNAME by name). What is in there is the
 * container's to forge, but all it can make DEL delete is an interface of
 * its own namespace.
 */
function sweepNetns(env: CniEnv, key: string): void {
  const ns = containerNetnsIfThere(env.netns);
  if (ns === undefined) return;
  const home = currentNetns();
  let inside: Netlink;
  try {
    inside = netlinkIn(ns, home, (_c, fn) => fn());
  } finally {
    closeQuietly(home);
    closeQuietly(ns);
  }
  try {
    for (const l of leasesOf(dumpLinks(inside))) {
      if ((l.link.kind === 'macvlan' || l.link.kind === 'ipvlan') && l.record.cni === key) deleteLink(inside, l.link.index);
    }
    const bare = getLink(inside, env.ifname);
    if (bare && (bare.kind === 'macvlan' || bare.kind === 'ipvlan') && !bare.alias) deleteLink(inside, bare.index);
  } finally {
    inside.close();
  }
}

/** CHECK: IPAM's, then the entry, CNI_NETNS its namespace, the interface there (its kind, its record, up, the entry's addresses). */
export function checkVlan(env: CniEnv, conf: NetConf, text: string, key: string, kind: VlanKind, expected: string[] | undefined): void {
  const ipam = ipamOf(conf, env);
  if (ipam) runIpam(ipam, 'CHECK', env, text);
  const e = findAttachment(process.getuid!(), key, LOCK_WAIT_MS);
  if (!e) throw new CniError(CODE.unknownContainer, 'no such attachment', key);
  checkPrevAddresses(expected, e.addresses, 'attachment');
  const ns = openContainerNetns(env.netns);
  const home = currentNetns();
  let inside: Netlink;
  try {
    if (String(fstatSync(ns).ino) !== e.ino) throw new CniError(CODE.invalidEnv, 'CNI_NETNS: not the attachment\'s namespace', env.netns.slice(0, 200));
    inside = netlinkIn(ns, home, (_c, fn) => fn());
  } finally {
    closeQuietly(home);
    closeQuietly(ns);
  }
  try {
    checkInterface(inside, env.ifname, kind, e.addresses, `no ${kind} ${env.ifname} of this attachment in CNI_NETNS`, entryRecord(e));
  } finally {
    inside.close();
  }
}

/** GC: this network's attachments not in valid. */
export function gcVlan(network: string, valid: ReadonlySet<string>): string[] {
  return gcAttachments(process.getuid!(), network, valid, LOCK_WAIT_MS);
}

