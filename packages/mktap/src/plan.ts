// From mktap's options, the environment (PEERUID/PEERGID, the client's
// request) and nothing else, a validated plan: everything is checked here,
// before any system call changes state.
import {
  UsageError, InputError, DeniedError, checkIfName, parseUint, parseFdList, parseUser, parseGroup,
  optString, optFlag, optList, peerId, parseIp, openTrustedFile, type Env, type OptionValues,
} from '@netgrant/core';
import { parsePoolConfig, macOption, queueFds, type PoolConfig } from '@netgrant/lease';
import { closeSync } from 'node:fs';

export interface Plan {
  type: 'tap' | 'tun';
  /** The name asked for, or undefined for the kernel's choice (tapN/tunN). */
  name: string | undefined;
  queues: number;
  vnetHdr: boolean;
  owner: number | undefined;
  group: number | undefined;
  persist: boolean;
  mtu: number | undefined;
  txqueuelen: number | undefined;
  /** An explicit MAC, 'random', or 'stable' (derived from the peer and the name). */
  mac: Buffer | 'random' | 'stable';
  bridge: string | undefined;
  /** Where the fds go. */
  fds: number[];
  /** A network namespace fd to create the tap in (checked against the peer unless anyNetns). */
  netnsFd: number | undefined;
  anyNetns: boolean;
  maxPerPeer: number | undefined;
  /** The peer's uid, when known (PEERUID). */
  peerUid: number | undefined;
  /** The MAC the guest must use (exported as GUESTMAC), if any: explicit, random or stable. */
  guestMac: Buffer | 'random' | 'stable' | undefined;
  /** Addresses the guest may use as its source (--guest-ip). */
  guestIps: string[];
  /** Filter every frame from the guest (--pin). */
  pin: boolean;
  /** The administrator's pool (--pool): the guest gets one address per subnet. */
  pool: PoolConfig | undefined;
  /** No bridge: the host side routes the guest's addresses (--routed, needs --pool). */
  routed: boolean;
}


/** The client's request (fd-recv -e REQQUEUES,REQMTU,REQNAME,REQVNETHDR), read only with -R. */
function requested(env: Env): { queues?: string; mtu?: string; name?: string; vnetHdr?: string } {
  const pick = (k: string) => env.get(k);
  return { queues: pick('REQQUEUES'), mtu: pick('REQMTU'), name: pick('REQNAME'), vnetHdr: pick('REQVNETHDR') };
}

/** The pool file: the administrator's (trusted: root's, not writable by others, on mktap's own filesystem), read once. */
function readPool(path: string): PoolConfig {
  const file = openTrustedFile(path, { sameFilesystemAs: process.argv[1] ?? '/' });
  closeSync(file.fd);
  return parsePoolConfig(file.text, path);
}

export function makePlan(opts: OptionValues, env: Env): Plan {
  const typeText = optString(opts, 'type') ?? 'tap';
  if (typeText !== 'tap' && typeText !== 'tun') throw new UsageError(`-t: expected tap or tun, got ${JSON.stringify(typeText)}`);
  const nameText = optString(opts, 'name');
  let name = nameText === undefined ? undefined : checkIfName(nameText, '-n');
  if (name?.includes('%')) throw new UsageError('-n: a name with % is a kernel template; give a plain name or none');
  let queues = parseUint(optString(opts, 'queues') ?? '1', '-q', 1, 256);
  let vnetHdr = optFlag(opts, 'vnet-hdr');
  const mtuText = optString(opts, 'mtu');
  let mtu = mtuText === undefined ? undefined : parseUint(mtuText, '-m', 68, 65535);
  const txText = optString(opts, 'txqueuelen');
  const txqueuelen = txText === undefined ? undefined : parseUint(txText, '--txqueuelen', 0, 0xffffffff);
  const macText = optString(opts, 'mac');
  const stable = optFlag(opts, 'stable-mac');
  if (macText !== undefined && stable) throw new UsageError('-a and --stable-mac exclude each other');
  const mac: Plan['mac'] = macText !== undefined ? macOption(macText, '-a') : stable ? 'stable' : 'random';
  const bridgeText = optString(opts, 'bridge');
  let bridge = bridgeText === undefined ? undefined : checkIfName(bridgeText, '-b');
  if (optFlag(opts, 'bridge-from-acl')) {
    // The bridge a client asked for, only once bridge-acl approved it.
    if (bridge !== undefined) throw new UsageError('-b and --bridge-from-acl exclude each other');
    const approved = env.get('ACLBRIDGE');
    if (approved === undefined) throw new InputError('--bridge-from-acl: ACLBRIDGE not set (run bridge-acl first)');
    bridge = checkIfName(approved, 'ACLBRIDGE');
  }
  if (typeText === 'tun' && (bridge !== undefined || macText !== undefined || stable)) throw new UsageError('a bridge, -a and --stable-mac need a tap (-t tap)');

  const fromPeer = optFlag(opts, 'owner-from-peer');
  const ownerText = optString(opts, 'owner');
  const groupText = optString(opts, 'group');
  if (fromPeer && (ownerText !== undefined || groupText !== undefined)) throw new UsageError('--owner-from-peer excludes -o and -g');
  const peerUid = peerId(env, 'PEERUID');
  const peerGid = peerId(env, 'PEERGID');
  let owner = ownerText === undefined ? undefined : parseUser(ownerText, '-o');
  let group = groupText === undefined ? undefined : parseGroup(groupText, '-g');
  if (fromPeer) {
    if (peerUid === undefined || peerGid === undefined) throw new InputError('--owner-from-peer: PEERUID or PEERGID not set (run peer-check first)');
    owner = peerUid;
    group = peerGid;
  }
  const persist = optFlag(opts, 'persist');
  if (persist && owner === undefined) throw new UsageError('--persist needs an owner (-o or --owner-from-peer): an ownerless persistent tap can be attached by anyone');

  const maxText = optString(opts, 'max-per-peer');
  const maxPerPeer = maxText === undefined ? undefined : parseUint(maxText, '--max-per-peer', 0, 65535);
  if (maxPerPeer !== undefined && peerUid === undefined) throw new InputError('--max-per-peer: PEERUID not set (run peer-check first)');
  if (maxPerPeer !== undefined && owner !== peerUid) throw new UsageError('--max-per-peer counts taps owned by the peer: use --owner-from-peer or -o with the peer');

  const netnsText = optString(opts, 'netns-fd');
  const netnsFd = netnsText === undefined ? undefined : parseFdList(netnsText, '-N')[0];
  if (netnsText !== undefined && netnsText.includes(',')) throw new UsageError('-N takes one fd');
  const anyNetns = optFlag(opts, 'any-netns');
  if (netnsFd !== undefined) {
    if (!anyNetns && peerUid === undefined) throw new InputError('-N: PEERUID not set, so the namespace owner cannot be checked (run peer-check first, or --any-netns)');
  }

  // The client's request, within the administrator's limits.
  if (optFlag(opts, 'request')) {
    const req = requested(env);
    if (req.queues !== undefined) {
      const want = parseUint(req.queues, 'REQQUEUES', 1, 256);
      if (want > queues) throw new DeniedError(`request for ${want} queues refused: at most ${queues}`);
      queues = want;
    }
    if (req.mtu !== undefined) {
      const want = parseUint(req.mtu, 'REQMTU', 68, 65535);
      if (mtu !== undefined && want > mtu) throw new DeniedError(`request for MTU ${want} refused: at most ${mtu}`);
      if (mtu === undefined) throw new DeniedError('request for an MTU refused: no -m limit set');
      mtu = want;
    }
    if (req.vnetHdr !== undefined) {
      if (req.vnetHdr !== '0' && req.vnetHdr !== '1') throw new InputError(`REQVNETHDR must be 0 or 1, got ${JSON.stringify(req.vnetHdr)}`);
      if (req.vnetHdr === '1' && !vnetHdr) throw new DeniedError('request for a vnet header refused: not enabled (--vnet-hdr)');
      vnetHdr = req.vnetHdr === '1';
    }
    if (req.name !== undefined) {
      const prefix = optString(opts, 'name-prefix');
      if (prefix === undefined) throw new DeniedError('request for a name refused: no --name-prefix set');
      const want = checkIfName(req.name, 'REQNAME');
      if (want.includes('%')) throw new InputError('REQNAME: a name with % is a kernel template; give a plain name or none');
      if (!want.startsWith(prefix) || want === prefix) throw new DeniedError(`request for name ${JSON.stringify(want)} refused: names must start with ${JSON.stringify(prefix)}`);
      name = want;
    }
  }

  const guestText = optString(opts, 'guest-mac');
  const guestMac: Plan['guestMac'] = guestText === undefined ? undefined : guestText === 'random' || guestText === 'stable' ? guestText : macOption(guestText, '--guest-mac');
  if (guestMac === 'stable' && peerUid === undefined) throw new InputError('--guest-mac stable: PEERUID not set (run peer-check first)');
  const guestIps = optList(opts, 'guest-ip').map((a) => {
    const ip = parseIp(a);
    if (!ip) throw new UsageError(`--guest-ip: not an IPv4 or IPv6 address: ${JSON.stringify(a)}`);
    return a;
  });
  const pin = optFlag(opts, 'pin');
  if (typeText === 'tun' && (guestMac !== undefined || guestIps.length || pin)) throw new UsageError('--guest-mac, --guest-ip and --pin need a tap (-t tap)');
  if (guestIps.length && !pin) throw new UsageError('--guest-ip needs --pin (the addresses are what the filter lets through)');

  const poolPath = optString(opts, 'pool');
  const routed = optFlag(opts, 'routed');
  if ((poolPath !== undefined || routed) && typeText === 'tun') throw new UsageError('--pool and --routed need a tap (-t tap)');
  if (routed && poolPath === undefined) throw new UsageError('--routed needs --pool (the addresses it routes)');
  if (routed && bridge !== undefined) throw new UsageError('--routed attaches no bridge: it excludes -b and --bridge-from-acl');
  if (poolPath !== undefined && !routed && bridge === undefined) throw new UsageError('--pool needs a bridge (-b, --bridge-from-acl) or --routed');
  const pool = poolPath === undefined ? undefined : readPool(poolPath);

  const fds = queueFds(optString(opts, 'fd'), queues, netnsFd);

  return { type: typeText, name, queues, vnetHdr, owner, group, persist, mtu, txqueuelen, mac, bridge, fds, netnsFd, anyNetns, maxPerPeer, peerUid,
    // A pool's lease names its guest: GUESTMAC, the record's and the DHCP responder's.
    guestMac: guestMac ?? (pool ? 'random' : undefined), guestIps, pin, pool, routed };
}
