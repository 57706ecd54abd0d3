// A guest that brings eth0 up with an address and pings the host side.
// Its result is one line on the serial console: NETGRANT-GUEST ping=ok|fail.
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { fetchKernel, CACHE } from './kernel.mjs';
import { buildInitramfs, INIT_PRELUDE } from './initramfs.mjs';

const INIT = `${INIT_PRELUDE}
ip=$(arg ngip); peer=$(arg ngpeer)
ip link set lo up
ip link set eth0 up
ip addr add "$ip" dev eth0
if ping -c 3 -W 3 "$peer" >/tmp/ping 2>&1; then r=ok; else r=fail; fi
cat /tmp/ping
echo "NETGRANT-GUEST ping=$r queues=$(ls /sys/class/net/eth0/queues | grep -c rx)"
poweroff -f
`;

/** { kernel, initrd } for the ping guest, built once into the cache. */
export function pingGuest() {
  const k = fetchKernel();
  const initrd = join(CACHE, `ping-guest-${k.version}.cpio.gz`);
  if (!existsSync(initrd)) buildInitramfs({ modulesDir: k.modules, modules: ['virtio_pci', 'virtio_net'], init: INIT, out: initrd });
  return { kernel: k.vmlinuz, initrd };
}

/** The kernel command line for an address and a peer to ping. */
export const pingAppend = (ip, peer) => `console=ttyS0 panic=-1 quiet loglevel=3 ngip=${ip} ngpeer=${peer}`;
