// mkmacvlan: the same launcher with a macvlan interface.
import { launcherProgram, MACVLAN_LAUNCHER } from '@netgrant/lease';

export const program = launcherProgram(MACVLAN_LAUNCHER);
