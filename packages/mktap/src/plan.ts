// From mktap's options, the environment (PEERUID/PEERGID, the client's
// request) and nothing else, a validated plan: everything is checked here,
// before any system call changes state.
import {
  UsageError, InputError, DeniedError, checkIfName, parseUint, parseFdList, parseUser, parseGroup,
  optString, optFlag, peerId, type Env, type OptionValues,
} from '@netgrant/core';
import { parseMac } from './mac.js';

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
}


/** The client's request (fd-recv -e REQQUEUES,REQMTU,REQNAME,REQVNETHDR), read only with -R. */
function requested(env: Env): { queues?: string; mtu?: string; name?: string; vnetHdr?: string } {
  const pick = (k: string) => env.get(k);
  return { queues: pick('REQQUEUES'), mtu: pick('REQMTU'), name: pick('REQNAME'), vnetHdr: pick('REQVNETHDR') };
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
  const mac: Plan['mac'] = macText !== undefined ? parseMac(macText, '-a') : stable ? 'stable' : 'random';
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
      if (!want.startsWith(prefix) || want === prefix) throw new DeniedError(`request for name ${JSON.stringify(want)} refused: names must start with ${JSON.stringify(prefix)}`);
      name = want;
    }
  }

  const fdsText = optString(opts, 'fd');
  let fds: number[];
  if (fdsText === undefined) fds = Array.from({ length: queues }, (_, i) => 3 + i);
  else {
    const listed = parseFdList(fdsText, '-d');
    if (listed.length === 1) fds = Array.from({ length: queues }, (_, i) => listed[0]! + i);
    else if (listed.length === queues) fds = listed;
    else throw new UsageError(`-d lists ${listed.length} fds for ${queues} queues`);
  }
  if (netnsFd !== undefined && fds.includes(netnsFd)) throw new UsageError(`-d: fd ${netnsFd} is the namespace fd`);
  if (fds.some((f) => f <= 2)) throw new UsageError('-d: fds 0, 1 and 2 are stdio');

  return { type: typeText, name, queues, vnetHdr, owner, group, persist, mtu, txqueuelen, mac, bridge, fds, netnsFd, anyNetns, maxPerPeer, peerUid };
}
