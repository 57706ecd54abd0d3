// Neighbour entries: a permanent entry (an address's link-layer address,
// never probed or expired) and a proxy entry (the device answers ARP/NDP
// for the address: `ip neigh add proxy`). Both belong to their device and
// go with it.
import { attr } from './attrs.js';
import { parseIp } from './ip.js';
import { InputError } from '../errors.js';
import { NLM_F_CREATE, NLM_F_EXCL, type Netlink } from './socket.js';
import { formatMac } from './mac.js';

const RTM_NEWNEIGH = 28;
const NDA_DST = 1;
const NDA_LLADDR = 2;
const NUD_PERMANENT = 0x80;
const NTF_PROXY = 0x08;

export interface Neighbour {
  index: number;
  address: string;
  /** The link-layer address of a permanent entry; omit for a proxy entry. */
  lladdr?: Buffer;
}

/** Add a permanent neighbour entry (lladdr given) or a proxy entry (none). */
export function addNeighbour(nl: Netlink, n: Neighbour): void {
  const ip = parseIp(n.address);
  if (!ip) throw new InputError(`not an IP address: ${JSON.stringify(n.address)}`);
  const ndmsg = Buffer.alloc(12);
  ndmsg.writeUInt8(ip.family, 0);
  ndmsg.writeInt32LE(n.index, 4);
  ndmsg.writeUInt16LE(NUD_PERMANENT, 8);
  ndmsg.writeUInt8(n.lladdr ? 0 : NTF_PROXY, 10);
  const parts = [ndmsg, attr(NDA_DST, ip.bytes)];
  if (n.lladdr) parts.push(attr(NDA_LLADDR, n.lladdr));
  const what = n.lladdr ? `add neighbour ${n.address} lladdr ${formatMac(n.lladdr)}` : `add proxy neighbour ${n.address}`;
  nl.request(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_EXCL, Buffer.concat(parts), `${what} dev ${n.index}`);
}
