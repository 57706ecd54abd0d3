// Rootless: the plugin runs in a user namespace other than the initial one
// (podman's rootless one), uid 0 there with no power over the host. It
// asks a netgrant service instead: it connects to the service's socket
// ("socket" in the configuration, default /run/user/UID/netgrant-cni.sock,
// UID the host uid its user namespace maps 0 to; host /run is hidden from
// podman's rootless plugins but /run/user/UID is not), sends the
// container's namespace fd (fd-send's wire format), and reads the answer
// fd-send -e NETIF -e NETADDRS -e NETGATEWAYS -e NETHOSTIF sends back. The
// service's chain decides everything (peer-check, mkveth -N's ownership
// check, the pool, the quota, the interface name, the kind: its creator);
// the plugin only asks (REQOP=ADD, CNI_NETWORK, CNI_CONTAINERID and
// CNI_IFNAME travel as metadata: the creator's --cni keys the lease by
// them, under the peer's uid; REQKIND for its log), and refuses an answer
// that is not what the network asks for. The other operations:
// rootless-ops.ts.
import { readFileSync } from 'node:fs';
import { CLONE_NEWNET, Netlink, closeQuietly, deleteLink, ifNameProblem, connectUnix, decodeEnv, encodeEnv, getLink, recvMessage, sendMessage, setns, unixSocket } from '@netgrant/core';
import { CniError, CODE, openNetns, type CniEnv, type NetConf } from './spec.js';
import type { Attached } from './result.js';

/** The initial user namespace maps every uid to itself. */
function uidMap(): string[] {
  return readFileSync('/proc/self/uid_map', 'utf8').trim().split('\n')[0]!.trim().split(/\s+/);
}

export function rootless(): boolean {
  const map = uidMap();
  return !(map[0] === '0' && map[1] === '0' && map[2] === '4294967295');
}

const ANSWER_TIMEOUT_MS = 30000;

/** The service's socket: the configuration's "socket", else /run/user/UID/netgrant-cni.sock. */
export function servicePath(conf: NetConf): string {
  const given = conf.raw.socket;
  if (given !== undefined) {
    if (typeof given !== 'string' || !given.startsWith('/') || given.length > 107) throw new CniError(CODE.invalidConfig, 'socket: not an absolute path of at most 107 bytes');
    return given;
  }
  const [inside, host] = uidMap();
  if (inside !== '0' || !/^[0-9]+$/.test(host ?? '')) throw new CniError(CODE.invalidConfig, 'socket: not set, and the user namespace does not map uid 0');
  return `/run/user/${host}/netgrant-cni.sock`;
}

/**
 * Run fn with a netlink socket of the container's namespace. The plugin
 * owns it (it is in the namespace's user namespace) and enters it for
 * good: it cannot go back to a namespace its user namespace does not own
 * (podman's rootless-netns it could, a test's or the host's it cannot), and
 * it has nothing more to do in its own. Once per process.
 */
export function enterNetns<T>(ns: number, fn: (nl: Netlink) => T): T {
  setns(ns, CLONE_NEWNET);
  const nl = Netlink.open();
  try {
    return fn(nl);
  } finally {
    nl.close();
  }
}

/** Metadata for the service (docs/protocol.md, "CNI requests"). */
export type Request = [string, string][];

/** The attachment's metadata: the network, CNI_CONTAINERID, CNI_IFNAME. */
export const attachmentVars = (env: CniEnv, conf: NetConf): Request => [['CNI_NETWORK', conf.name], ['CNI_CONTAINERID', env.containerId], ['CNI_IFNAME', env.ifname]];

/**
 * One request to the service: the metadata (and fds), then its answer's
 * variables. Not reachable: CniError 11 (try again); no answer (the chain
 * refused: its log says why): 101.
 */
export async function askService(conf: NetConf, vars: Request, fds: number[] = []): Promise<Map<string, string>> {
  const path = servicePath(conf);
  const sock = unixSocket();
  try {
    try {
      connectUnix(sock, path);
    } catch (e) {
      throw new CniError(CODE.tryAgain, 'the netgrant service cannot be reached', (e as Error).message);
    }
    sendMessage(sock, encodeEnv(vars), fds);
    try {
      const m = await recvMessage(sock, { maxFds: 0, timeoutMs: ANSWER_TIMEOUT_MS });
      return new Map(decodeEnv(m.payload));
    } catch (e) {
      throw new CniError(CODE.refused, 'the netgrant service refused the request (its log says why)', (e as Error).message);
    }
  } finally {
    closeQuietly(sock);
  }
}

export async function addRootless(env: CniEnv, conf: NetConf, kind: string): Promise<Attached> {
  const ns = openNetns(env.netns);
  try {
    const vars = await askService(conf, [['REQOP', 'ADD'], ...attachmentVars(env, conf), ['REQKIND', kind]], [ns]);
    const [ifname, addrs, gateways, hostIf] = ['NETIF', 'NETADDRS', 'NETGATEWAYS', 'NETHOSTIF'].map((k) => vars.get(k) ?? '') as [string, string, string, string];
    if (ifname !== env.ifname) {
      // A pair the service made that the plugin cannot use: its inside end deleted (the pair goes with it; else the runtime's deleting the namespace after the failed ADD takes it).
      if (ifname !== '' && ifNameProblem(ifname) === null) enterNetns(ns, (nl) => {
        const link = getLink(nl, ifname);
        if (link) deleteLink(nl, link.index);
      });
      throw new CniError(CODE.system, `the service named the interface ${JSON.stringify(ifname.slice(0, 16))}, not CNI_IFNAME`, 'set the service\'s -i to the runtime\'s interface name');
    }
    const addresses = addrs.split(',').filter((a) => a !== '');
    const gws = gateways.split(',');
    if (addresses.length === 0 || gws.length !== addresses.length) throw new CniError(CODE.system, 'the service\'s answer has no addresses (NETADDRS, NETGATEWAYS)');
    // What the service made must be what the network asks for (the result says what it is); else it goes.
    const link = enterNetns(ns, (nl) => {
      const l = getLink(nl, ifname);
      if (l && l.kind !== kind) deleteLink(nl, l.index);
      return l;
    });
    if (!link?.mac) throw new CniError(CODE.system, `the service answered, but there is no ${ifname} in CNI_NETNS`);
    if (link.kind !== kind) throw new CniError(CODE.system, `the service made a ${link.kind ?? 'link of no kind'}, the network asks for ${kind}`, 'the service\'s creator and the conflist\'s "kind" must agree');
    const mac = link.mac;
    return { hostIf, hostMac: undefined, ifname, mac, netns: env.netns, addresses, gateways: gws };
  } finally {
    closeQuietly(ns);
  }
}
