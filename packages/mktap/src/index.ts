// mktap: open /dev/net/tun, create a tap (or tun) device with its lease
// record (and pin filter), place its fd(s), export
// TAPNAME/TAPFD/TAPFDS/TAPMAC/GUESTMAC (and with --pool GUESTADDRS/GUESTGATEWAYS),
// exec the rest.
import type { Program } from '@netgrant/core';
import { PIN_OPTIONS, TARGET_OPTIONS } from '@netgrant/lease';
import { makePlan } from './plan.js';
import { createTap } from './create.js';

export const program: Program = {
  name: 'mktap',
  usage:
    '[-t tap|tun] [-n NAME] [-q N] [--vnet-hdr] [-o UID] [-g GID] [--owner-from-peer] [--persist] [-m MTU] [--txqueuelen N] ' +
    '[-a MAC|--stable-mac] [-b BRIDGE|--bridge-from-acl] [-d FD[,FD...]] [-N NETNSFD [--any-netns]] [--max-per-peer N] [-R [--name-prefix P]] ' +
    '[--guest-mac MAC|stable|random] [--pin [--guest-ip ADDR]...] [--pool CONFIG [--routed]] prog...',
  options: [
    { name: 'type', short: 't', value: true },
    { name: 'name', short: 'n', value: true },
    { name: 'queues', short: 'q', value: true },
    { name: 'vnet-hdr' },
    { name: 'owner', short: 'o', value: true },
    { name: 'group', short: 'g', value: true },
    { name: 'owner-from-peer' },
    { name: 'persist' },
    { name: 'mtu', short: 'm', value: true },
    { name: 'txqueuelen', value: true },
    { name: 'mac', short: 'a', value: true },
    { name: 'stable-mac' },
    { name: 'bridge', short: 'b', value: true },
    { name: 'bridge-from-acl' },
    { name: 'fd', short: 'd', value: true },
    ...TARGET_OPTIONS,
    { name: 'max-per-peer', value: true },
    { name: 'request', short: 'R' },
    { name: 'name-prefix', value: true },
    ...PIN_OPTIONS,
    { name: 'pool', value: true },
    { name: 'routed' },
  ],
  // Resident use is fine in the server's own namespace; -N enters another.
  resident: (opts) => (opts['netns-fd'] !== undefined ? 'mktap -N enters a network namespace' : null),
  async run(chain, opts) {
    const plan = makePlan(opts, chain.env);
    const tap = await createTap(plan, chain.fds);
    chain.env.set('TAPNAME', tap.name);
    chain.env.set('TAPFD', String(plan.fds[0]));
    chain.env.set('TAPFDS', plan.fds.join(','));
    if (tap.mac) chain.env.set('TAPMAC', tap.mac);
    if (tap.guestMac) chain.env.set('GUESTMAC', tap.guestMac);
    if (tap.addresses) chain.env.set('GUESTADDRS', tap.addresses.join(','));
    if (tap.gateways) chain.env.set('GUESTGATEWAYS', tap.gateways.join(','));
  },
};
