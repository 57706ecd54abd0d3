// The kernel VM lane's NICs (virtio-net), in pairs on QEMU hubs of their
// own: a hub's frames reach only the other NIC on it (no host network, no
// user-mode net). A test takes its pair by MAC (tools/test/lib/vm-nics.ts)
// into its own namespace; two files run at once, so each has a hub of its own.
export const GUEST_NICS = {
  /** packages/lease/test/vlan.vm.test.ts */
  vlan: ['52:54:00:12:01:01', '52:54:00:12:01:02'],
  /** packages/mkphys/test/mkphys.vm.test.ts */
  phys: ['52:54:00:12:02:01', '52:54:00:12:02:02'],
  /** test/faults-vlan.vm.test.ts: one NIC alone on its hub (the move is the subject, not the wire) */
  faults: ['52:54:00:12:03:01'],
};

/** QEMU's arguments for them. */
export const nicArgs = () => Object.values(GUEST_NICS).flatMap((pair, h) => pair.flatMap((mac, i) => [
  '-netdev', `hubport,id=h${h + 1}p${i},hubid=${h + 1}`, '-device', `virtio-net-pci,netdev=h${h + 1}p${i},mac=${mac}`,
]));
