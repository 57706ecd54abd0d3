// Kind tap, rootful: a persistent tap in the container's namespace
// (CNI_NETNS) named CNI_IFNAME, for runtimes whose VM monitor attaches to
// it by name (Kata-like); lease's tap-attachment.ts makes, finds and ends
// it by the attachment's key. It has no address (the guest's are its own
// business): the result holds the interface alone. Keys: "mtu",
// "multiQueue" (as the upstream tap plugin names them); "owner", "group",
// "bridge" and "ipam" are refused (the tap is the runtime's uid's, in the
// container's namespace alone).
import { closeQuietly, formatMac } from '@netgrant/core';
import { endAttachmentTap, findAttachmentTap, gcAttachmentTaps, makeAttachmentTap } from '@netgrant/lease';
import { CniError, CODE, type CniEnv, type NetConf } from './spec.js';
import type { Attached } from './result.js';
import { containerNetnsIfThere, openContainerNetns } from './veth.js';

/** The network's tap keys, checked. */
function tapKeys(conf: NetConf): { mtu?: number; multiQueue?: boolean } {
  for (const k of ['owner', 'group', 'bridge', 'ipam']) if (conf.raw[k] !== undefined) throw new CniError(CODE.unsupportedField, `${k}: not served for kind tap`, `${k}=${JSON.stringify(conf.raw[k]).slice(0, 40)}`);
  const { mtu, multiQueue } = conf.raw;
  if (mtu !== undefined && (typeof mtu !== 'number' || !Number.isInteger(mtu) || mtu < 68 || mtu > 65535)) throw new CniError(CODE.invalidConfig, 'mtu: not a number from 68 to 65535', JSON.stringify(mtu).slice(0, 40));
  if (multiQueue !== undefined && typeof multiQueue !== 'boolean') throw new CniError(CODE.invalidConfig, 'multiQueue: not true or false');
  return { ...(mtu !== undefined ? { mtu: mtu as number } : {}), ...(multiQueue !== undefined ? { multiQueue } : {}) };
}

function inContainer<T>(env: CniEnv, fn: (ns: number) => T): T {
  const ns = openContainerNetns(env.netns);
  try {
    return fn(ns);
  } finally {
    closeQuietly(ns);
  }
}

export function addTap(env: CniEnv, conf: NetConf, key: string): Attached {
  const keys = tapKeys(conf);
  const mac = inContainer(env, (ns) => makeAttachmentTap({ ns, name: env.ifname, cni: key, ...keys }));
  return { hostIf: '', hostMac: undefined, ifname: env.ifname, mac, netns: env.netns, addresses: [], gateways: [], routes: [] };
}

/** DEL: in CNI_NETNS, if given (without it, the namespace is gone or going, and its tap with it). */
export function delTap(env: CniEnv, key: string): void {
  const ns = env.netns === '' ? undefined : containerNetnsIfThere(env.netns);
  if (ns === undefined) return;
  try {
    endAttachmentTap(ns, key);
  } finally {
    closeQuietly(ns);
  }
}

/** CHECK: the tap is there, up, still persistent, owned as it was made, with its MAC. */
export function checkTap(env: CniEnv, key: string): void {
  const lease = inContainer(env, (ns) => findAttachmentTap(ns, key));
  if (!lease) throw new CniError(CODE.unknownContainer, 'no such attachment', key);
  const { link, record } = lease;
  if (link.name !== env.ifname || link.tun?.type !== 2) throw new CniError(CODE.system, `the attachment's tap is ${link.name}, not a tap ${env.ifname}`);
  if (!link.up) throw new CniError(CODE.system, `${env.ifname} is down`);
  if (!link.tun.persist || (link.tun.owner ?? null) !== record.owner) throw new CniError(CODE.system, `${env.ifname} is not as made (persistent, owner ${record.owner})`);
  if (record.mac !== undefined && formatMac(link.mac!) !== record.mac) throw new CniError(CODE.system, `${env.ifname}'s MAC changed`, formatMac(link.mac!));
}

export function gcTap(network: string, valid: ReadonlySet<string>): string[] {
  return gcAttachmentTaps(network, valid);
}
