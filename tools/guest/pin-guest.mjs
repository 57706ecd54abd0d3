// A guest for pinned leases: it pings the host side as itself, then tries
// to get out as someone else, then as itself again. One result line on the
// serial console:
//   NETGRANT-GUEST own=ok foreign-ip=fail foreign-mac=fail back=ok
// (a pinned lease; on an unpinned one the spoofs succeed). The foreign
// address is added beside the lease's (`ip addr add`) and pinged from; the
// foreign MAC is set with `ip link set eth0 address`. Before it, a line
// NETGRANT-QUEUES N (eth0's queue count); with nghold=1 on the command line
// the guest stays up after its result (for a test that kills QEMU).
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fetchKernel, CACHE } from './kernel.mjs';
import { buildInitramfs, INIT_PRELUDE } from './initramfs.mjs';

const INIT = `${INIT_PRELUDE}
ip=$(arg ngip); peer=$(arg ngpeer); fip=$(arg ngforeignip); fmac=$(arg ngforeignmac)
try() { if ping -c 2 -W 2 "$@" "$peer" >/tmp/ping 2>&1; then echo ok; else echo fail; fi; cat /tmp/ping >&2; }
ip link set lo up
ip link set eth0 up
ip addr add "$ip" dev eth0
own=$(try)
ip addr add "$fip" dev eth0
fi=$(try -I "\${fip%/*}")
ip addr del "$fip" dev eth0
mine=$(cat /sys/class/net/eth0/address)
ip neigh flush dev eth0
ip link set eth0 down; ip link set eth0 address "$fmac"; ip link set eth0 up
fm=$(try)
ip neigh flush dev eth0
ip link set eth0 down; ip link set eth0 address "$mine"; ip link set eth0 up
back=$(try)
echo "NETGRANT-QUEUES $(ls /sys/class/net/eth0/queues | grep -c rx)"
echo "NETGRANT-GUEST own=$own foreign-ip=$fi foreign-mac=$fm back=$back"
[ "$(arg nghold)" = 1 ] && sleep 120
poweroff -f
`;

/** { kernel, initrd } for the pin guest, built once into the cache. */
export function pinGuest() {
  const k = fetchKernel();
  const initrd = join(CACHE, `pin-guest-${k.version}-${createHash('sha256').update(INIT).digest('hex').slice(0, 8)}.cpio.gz`);
  if (!existsSync(initrd)) buildInitramfs({ modulesDir: k.modules, modules: ['virtio_pci', 'virtio_net'], init: INIT, out: initrd });
  return { kernel: k.vmlinuz, initrd };
}

/** The kernel command line: the lease's address, the peer, and the foreign address and MAC to try. */
export const pinAppend = (ip, peer, foreignIp, foreignMac) =>
  `console=ttyS0 panic=-1 quiet loglevel=3 ngip=${ip} ngpeer=${peer} ngforeignip=${foreignIp} ngforeignmac=${foreignMac}`;
