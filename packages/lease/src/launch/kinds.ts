// The launchers' policy per kind, shared by their programs (mkmacvlan,
// mkipvlan) and netgrant-cni: the modes a launch may use, the default one,
// and the administrator's default configuration file.
import type { LauncherSpec } from './program.js';

export const MACVLAN_LAUNCHER: LauncherSpec = {
  name: 'mkmacvlan',
  kind: 'macvlan',
  modes: ['bridge', 'private', 'vepa', 'passthru'],
  defaultMode: 'bridge',
  defaultConfig: '/etc/netgrant/macvlan.conf',
};

export const IPVLAN_LAUNCHER: LauncherSpec = {
  name: 'mkipvlan',
  kind: 'ipvlan',
  modes: ['l3s', 'l3', 'l2'],
  defaultMode: 'l3s',
  defaultConfig: '/etc/netgrant/ipvlan.conf',
};
