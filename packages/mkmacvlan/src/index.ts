// mkmacvlan: the same launcher with a macvlan interface.
import { launcherProgram } from '@netgrant/lease';

export const program = launcherProgram({
  name: 'mkmacvlan',
  kind: 'macvlan',
  modes: ['bridge', 'private', 'vepa', 'passthru'],
  defaultMode: 'bridge',
  defaultConfig: '/etc/netgrant/macvlan.conf',
});
