// mkphys: lease a whole host NIC the administrator allowed: moved into a new
// network namespace (this process ends inside it, then execs the rest) or
// into the client's (-N). One lessee at a time; when the namespace dies the
// kernel gives the NIC back to the initial namespace, where the next mkphys
// or reaper restores what the host had set (@netgrant/lease phys/).
import { DeniedError, UsageError, checkIfName, openTrustedFile, optString, parseUint, peerId, say, type Program } from '@netgrant/core';
import { TARGET_OPTIONS, clientNetns, leasePhys } from '@netgrant/lease';
import { closeSync } from 'node:fs';
import { parsePhysConfig } from './conf.js';

const NAME = 'mkphys';
export const DEFAULT_CONFIG = '/etc/netgrant/phys.conf';

export const program: Program = {
  name: NAME,
  usage: '[-c CONFIG] -P IFNAME [-i NAME] [-N NETNSFD [--any-netns]] [-t LOCKWAIT_MS] prog...',
  options: [
    { name: 'config', short: 'c', value: true },
    { name: 'phys', short: 'P', value: true },
    { name: 'ifname', short: 'i', value: true },
    { name: 'timeout', short: 't', value: true },
    ...TARGET_OPTIONS,
  ],
  run(chain, opts) {
    const hostText = optString(opts, 'phys');
    if (hostText === undefined) throw new UsageError('-P IFNAME is required');
    const host = checkIfName(hostText, '-P');
    const ifname = checkIfName(optString(opts, 'ifname') ?? 'eth0', '-i');
    const lockWaitMs = parseUint(optString(opts, 'timeout') ?? '10000', '-t', 1, 3600000);
    const uid = peerId(chain.env, 'PEERUID') ?? process.getuid!();
    const path = optString(opts, 'config') ?? DEFAULT_CONFIG;
    const file = openTrustedFile(path);
    closeSync(file.fd);
    if (!parsePhysConfig(file.text, path).includes(host)) throw new DeniedError(`-P ${host}: not an interface the configuration allows`);
    const target = clientNetns(chain, opts);
    const done = leasePhys({ by: NAME, uid, host, ifname, lockWaitMs, warn: (m) => say(NAME, 'warning', m), ...(target !== undefined ? { target } : {}) });
    chain.env.set('NETIF', done.ifname);
  },
};
