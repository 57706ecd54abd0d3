// mkipvlan: a network namespace of one's own with an ipvlan interface and an
// address from a subnet the administrator listed (core's launcher).
import { launcherProgram } from '@netgrant/lease';

export const program = launcherProgram({
  name: 'mkipvlan',
  kind: 'ipvlan',
  modes: ['l3s', 'l3', 'l2'],
  defaultMode: 'l3s',
  defaultConfig: '/etc/netgrant/ipvlan.conf',
});
