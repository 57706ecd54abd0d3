// mkipvlan: a network namespace of one's own with an ipvlan interface and an
// address from a subnet the administrator listed (core's launcher).
import { launcherProgram, IPVLAN_LAUNCHER } from '@netgrant/lease';

export const program = launcherProgram(IPVLAN_LAUNCHER);
