// mkmacvtap: create a macvtap on an allowed parent, carrying its lease
// record (and pin filter), open its queues through a private device node,
// place their fds, export TAPNAME/TAPFD/TAPFDS/GUESTMAC, exec the rest.
import type { Program } from '@netgrant/core';
import { PIN_OPTIONS, TARGET_OPTIONS } from '@netgrant/lease';
import { makePlan } from './plan.js';
import { createMacvtap } from './create.js';

export const program: Program = {
  name: 'mkmacvtap',
  usage:
    '[-c CONFIG | -l PARENT] [-V VID] [-m bridge|vepa|private|passthru] [-n NAME] [-q N] [--vnet-hdr] [--guest-mac MAC|stable|random] ' +
    '[-N NETNSFD [--any-netns]] [--max-per-peer N] [-R] [--pin [--guest-ip ADDR]...] [-d FD[,FD...]] prog...',
  options: [
    { name: 'config', short: 'c', value: true },
    { name: 'parent', short: 'l', value: true },
    { name: 'mode', short: 'm', value: true },
    { name: 'vlan', short: 'V', value: true },
    { name: 'name', short: 'n', value: true },
    { name: 'queues', short: 'q', value: true },
    { name: 'vnet-hdr' },
    ...TARGET_OPTIONS,
    { name: 'max-per-peer', value: true },
    { name: 'request', short: 'R' },
    ...PIN_OPTIONS,
    { name: 'fd', short: 'd', value: true },
  ],
  // It mounts a sysfs and enters namespaces on the main thread: never resident.
  resident: () => 'mkmacvtap mounts a sysfs in the macvtap\'s namespace',
  async run(chain, opts) {
    const plan = makePlan(opts, chain.env);
    const made = await createMacvtap(plan, chain.fds);
    chain.env.set('TAPNAME', made.name);
    chain.env.set('TAPFD', String(plan.fds[0]));
    chain.env.set('TAPFDS', plan.fds.join(','));
    chain.env.set('GUESTMAC', made.guestMac);
  },
};
