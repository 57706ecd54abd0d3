// A guest for addressed leases: busybox udhcpc asks for its lease, the
// guest takes what it got (address, prefix, router, MTU) and pings the
// router; then it changes its MAC and asks again. A second interface eth1,
// if there is one (a routed lease), asks too and pings its router over the
// on-link route DHCP's option 121 gives. Result lines on the serial console:
//   NETGRANT-DHCP ip=A mask=N router=R mtu=M ping=ok changed=fail
//   NETGRANT-DHCP2 ip=A mask=32 router=R mtu=M staticroutes=... ping=ok
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { fetchKernel, CACHE } from './kernel.mjs';
import { buildInitramfs, INIT_PRELUDE } from './initramfs.mjs';

const INIT = `${INIT_PRELUDE}
fmac=$(arg ngforeignmac)
printf '#!/bin/sh\\n[ "$1" = bound ] && echo "ip=$ip mask=$mask router=$router mtu=$mtu" > /tmp/lease && echo "$staticroutes" > /tmp/routes\\nexit 0\\n' > /tmp/script
chmod +x /tmp/script
ip link set lo up
ip link set eth0 up
udhcpc -i eth0 -f -q -n -t 6 -T 3 -s /tmp/script >/dev/null 2>&1
got=$(cat /tmp/lease 2>/dev/null)
eval "$got"
ping=fail
if [ -n "$ip" ]; then
  ip link set eth0 mtu "$mtu"
  ip addr add "$ip/$mask" dev eth0
  ip route add default via "$router"
  ping -c 2 -W 3 "$router" >/dev/null 2>&1 && ping=ok
  ip addr flush dev eth0
fi
rm -f /tmp/lease
ip link set eth0 down; ip link set eth0 address "$fmac"; ip link set eth0 up
udhcpc -i eth0 -f -q -n -t 3 -T 2 -s /tmp/script >/dev/null 2>&1 && changed=ok || changed=fail
echo "NETGRANT-DHCP $got ping=$ping changed=$changed"
if [ -e /sys/class/net/eth1 ]; then
  ip link set eth1 up
  rm -f /tmp/lease /tmp/routes
  ip=
  udhcpc -i eth1 -f -q -n -t 6 -T 3 -s /tmp/script >/dev/null 2>&1
  got=$(cat /tmp/lease 2>/dev/null)
  eval "$got"
  ping=fail
  if [ -n "$ip" ]; then
    ip addr add "$ip/$mask" dev eth1
    ip route add "$router" dev eth1
    ping -c 2 -W 3 "$router" >/dev/null 2>&1 && ping=ok
  fi
  echo "NETGRANT-DHCP2 $got staticroutes=$(cat /tmp/routes 2>/dev/null | tr ' ' ,) ping=$ping"
fi
poweroff -f
`;

/** { kernel, initrd } for the DHCP guest, built once into the cache. */
export function dhcpGuest() {
  const k = fetchKernel();
  const initrd = join(CACHE, `dhcp-guest-${k.version}.cpio.gz`);
  if (!existsSync(initrd)) buildInitramfs({ modulesDir: k.modules, modules: ['virtio_pci', 'virtio_net'], init: INIT, out: initrd });
  return { kernel: k.vmlinuz, initrd };
}

/** The kernel command line: the MAC the guest changes to. */
export const dhcpAppend = (foreignMac) => `console=ttyS0 panic=-1 quiet loglevel=3 ngforeignmac=${foreignMac}`;
