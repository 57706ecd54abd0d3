// Every program of the toolkit, by name. The dispatcher and (later) the
// in-process chain runner look programs up here.
import type { Program } from '@netgrant/core';
import { program as fdSend } from '@netgrant/fd-send';
import { program as fdRecv } from '@netgrant/fd-recv';
import { program as peerCheck } from '@netgrant/peer-check';
import { program as ipcPair } from '@netgrant/ipc-pair';
import { program as netgrantServe } from '@netgrant/netgrant-serve';
import { program as mktap } from '@netgrant/mktap';
import { program as bridgeAcl } from '@netgrant/bridge-acl';
import { program as bridgeHelper } from '@netgrant/netgrant-bridge-helper';
import { program as capDrop } from '@netgrant/cap-drop';
import { program as netnsEnter } from '@netgrant/netns-enter';
import { program as mkipvlan } from '@netgrant/mkipvlan';
import { program as mkmacvlan } from '@netgrant/mkmacvlan';
import { program as mkveth } from '@netgrant/mkveth';
import { program as netgrantReap } from '@netgrant/netgrant-reap';
import { program as netgrantDhcpd } from '@netgrant/netgrant-dhcpd';
import { program as mkmacvtap } from '@netgrant/mkmacvtap';
import { program as netgrantCni } from '@netgrant/netgrant-cni';
import { program as mkphys } from '@netgrant/mkphys';

export const programs: ReadonlyMap<string, Program> = new Map([fdSend, fdRecv, peerCheck, ipcPair, netgrantServe, mktap, bridgeAcl, bridgeHelper, capDrop, netnsEnter, mkipvlan, mkmacvlan, mkveth, netgrantReap, netgrantDhcpd, mkmacvtap, netgrantCni, mkphys].map((p) => [p.name, p]));
