// From mkmacvtap's options, its configuration (-c) or parent (-l), the
// environment (PEERUID, the client's request with -R) and nothing else, a
// validated plan: everything is checked here, before any system call
// changes state.
import {
  UsageError, InputError, DeniedError, checkIfName, parseUint, parseFdList, optString, optFlag, optList, peerId,
  parseIp, openTrustedFile, type Env, type OptionValues,
} from '@netgrant/core';
import { checkVidAllowed, macOption, parseVid, queueFds } from '@netgrant/lease';
import { closeSync } from 'node:fs';
import { MODES, parseMacvtapConfig, type Mode } from './conf.js';

export const DEFAULT_CONFIG = '/etc/netgrant/macvtap.conf';
/** The kernel's limit on a macvtap's queues (MAX_TAP_QUEUES). */
export const MAX_QUEUES = 256;

export interface Plan {
  parent: string;
  /** -V: the 802.1Q VID whose sub-interface of parent the macvtap goes on. */
  vlan: number | undefined;
  mode: Mode;
  /** The name asked for (-n), or undefined: mkmacvtap picks one. */
  name: string | undefined;
  queues: number;
  vnetHdr: boolean;
  /** The guest's MAC, which is the macvtap's: explicit, random or stable; the parent's in passthru mode. */
  guestMac: Buffer | 'random' | 'stable' | undefined;
  guestIps: string[];
  pin: boolean;
  fds: number[];
  netnsFd: number | undefined;
  anyNetns: boolean;
  maxPerPeer: number | undefined;
  peerUid: number | undefined;
}

function configured(opts: OptionValues, vid: number | undefined): { parents: string[]; mode: Mode | undefined; vlans: Set<number> } {
  const parentText = optString(opts, 'parent');
  const configText = optString(opts, 'config');
  if (parentText !== undefined) {
    if (configText !== undefined) throw new UsageError('-c and -l exclude each other');
    // -l and -V are both the administrator's command line: it allows what it names.
    return { parents: [checkIfName(parentText, '-l')], mode: undefined, vlans: new Set(vid === undefined ? [] : [vid]) };
  }
  const path = configText ?? DEFAULT_CONFIG;
  const file = openTrustedFile(path);
  closeSync(file.fd);
  return parseMacvtapConfig(file.text, path);
}

export function makePlan(opts: OptionValues, env: Env): Plan {
  const modeText = optString(opts, 'mode');
  if (modeText !== undefined && !(MODES as readonly string[]).includes(modeText)) throw new UsageError(`-m: expected ${MODES.join(', ')}, got ${JSON.stringify(modeText)}`);
  const nameText = optString(opts, 'name');
  const name = nameText === undefined ? undefined : checkIfName(nameText, '-n');
  if (name?.includes('%')) throw new UsageError('-n: a name with % is a kernel template; give a plain name or none');
  let queues = parseUint(optString(opts, 'queues') ?? '1', '-q', 1, MAX_QUEUES);
  const vnetHdr = optFlag(opts, 'vnet-hdr');
  const peerUid = peerId(env, 'PEERUID');

  const guestText = optString(opts, 'guest-mac');
  const guestMac: Plan['guestMac'] = guestText === undefined ? undefined : guestText === 'random' || guestText === 'stable' ? guestText : macOption(guestText, '--guest-mac');
  if (guestMac === 'stable' && peerUid === undefined) throw new InputError('--guest-mac stable: PEERUID not set (run peer-check first)');
  const guestIps = optList(opts, 'guest-ip').map((a) => {
    if (!parseIp(a)) throw new UsageError(`--guest-ip: not an IPv4 or IPv6 address: ${JSON.stringify(a)}`);
    return a;
  });
  const pin = optFlag(opts, 'pin');
  if (guestIps.length && !pin) throw new UsageError('--guest-ip needs --pin (the addresses are what the filter lets through)');

  const maxText = optString(opts, 'max-per-peer');
  const maxPerPeer = maxText === undefined ? undefined : parseUint(maxText, '--max-per-peer', 0, 65535);
  if (maxPerPeer !== undefined && peerUid === undefined) throw new InputError('--max-per-peer: PEERUID not set (run peer-check first)');

  const netnsText = optString(opts, 'netns-fd');
  if (netnsText !== undefined && netnsText.includes(',')) throw new UsageError('-N takes one fd');
  const netnsFd = netnsText === undefined ? undefined : parseFdList(netnsText, '-N')[0];
  const anyNetns = optFlag(opts, 'any-netns');
  if (anyNetns && netnsFd === undefined) throw new UsageError('--any-netns: only with -N');
  if (netnsFd !== undefined && !anyNetns && peerUid === undefined) throw new InputError('-N: PEERUID not set, so the namespace owner cannot be checked (run peer-check first, or --any-netns)');

  const vidText = optString(opts, 'vlan');
  const vlan = vidText === undefined ? undefined : parseVid(vidText);
  if (vlan !== undefined && netnsFd !== undefined) throw new UsageError('-V excludes -N: a macvtap in the client\'s namespace is not seen by the sweep that keeps its sub-interface');
  const conf = configured(opts, vlan);
  let parent = conf.parents[0]!;
  if (optFlag(opts, 'request')) {
    const wantParent = env.get('REQPARENT');
    if (wantParent !== undefined) {
      const want = checkIfName(wantParent, 'REQPARENT');
      if (!conf.parents.includes(want)) throw new DeniedError(`request for parent ${JSON.stringify(want)} refused: not an allowed parent`);
      parent = want;
    }
    const wantQueues = env.get('REQQUEUES');
    if (wantQueues !== undefined) {
      const want = parseUint(wantQueues, 'REQQUEUES', 1, MAX_QUEUES);
      if (want > queues) throw new DeniedError(`request for ${want} queues refused: at most ${queues}`);
      queues = want;
    }
  }
  if (vlan !== undefined) checkVidAllowed(vlan, conf.vlans, parent);
  const mode = (modeText as Mode | undefined) ?? conf.mode ?? 'bridge';
  if (mode === 'passthru' && guestMac !== undefined) throw new UsageError('--guest-mac: in passthru mode the guest has the parent\'s MAC');
  const fds = queueFds(optString(opts, 'fd'), queues, netnsFd);
  return { parent, vlan, mode, name, queues, vnetHdr, guestMac, guestIps, pin, fds, netnsFd, anyNetns, maxPerPeer, peerUid };
}
