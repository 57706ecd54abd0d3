// The raw kernel cost of a tap lease (docs/perf.md row 2): one process
// looping over the calls mktap makes for `mktap -b BR --vnet-hdr`, through
// @netgrant/core, with no process start: open /dev/net/tun + TUNSETIFF,
// netlink: look up the bridge and the device, set master + up; then close
// (the device goes with its last fd). Bundled and run by tools/bench/lease.mjs:
//   node raw-tap.cjs BRIDGE N   -> {"ms":[...],"leases":N,"checked":N,"distinct_names":K}
import { readlinkSync } from 'node:fs';
import { createTun, withNetlink, getLink, setLink, close, tunGetIff, IFF_TAP } from '@netgrant/core';

const [bridge, count] = [process.argv[2]!, Number(process.argv[3])];
const ms: number[] = [];
const names = new Set<string>();
for (let i = 0; i < count; i++) {
  const t0 = performance.now();
  const dev = createTun({ type: 'tap', vnetHdr: true, exclusive: true });
  withNetlink((nl) => {
    const br = getLink(nl, bridge);
    const link = getLink(nl, dev.name);
    if (!br || !link) throw new Error(`bridge ${bridge} or device ${dev.name} not found`);
    setLink(nl, link.index, { master: br.index, up: true });
  });
  ms.push(performance.now() - t0);
  // The same check the lease clients make: a tap, on the bridge.
  const { name, flags } = tunGetIff(dev.fds[0]!);
  if (!(flags & IFF_TAP) || !readlinkSync(`/sys/class/net/${name}/master`).endsWith(`/${bridge}`)) throw new Error(`${name} is not a tap on ${bridge}`);
  names.add(name);
  close(dev.fds[0]!);
}
process.stdout.write(JSON.stringify({ ms, leases: count, checked: ms.length, distinct_names: names.size }));
