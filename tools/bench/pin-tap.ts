// Pins a bench tap the way a pinned lease is pinned (docs/perf.md row 4):
// installPin from @netgrant/lease at the tap's ingress, where the frames
// the pump writes (the "guest's" TX) enter the bridge. Bundled and run by
// tools/bench/datapath.mjs:
//   node pin-tap.cjs pin DEV GUEST_MAC ADDR...   -> {"dev":...,"filters":[...]}
//   node pin-tap.cjs unpin DEV                   -> {"dev":...,"filters":[]}
//   node pin-tap.cjs cost                        -> {"ns":{"ipv4-tcp":...,...}}
//   node pin-tap.cjs path-cost                   -> {"unpinnedNs":...,"pinnedNs":...,"ratio":...}
// (cost: the program's own time per frame, BPF_PROG_TEST_RUN over 100,000
// runs, for a full-size TCP frame from the lease's IPv4 and IPv6 address.
// path-cost: the CPU time per 1500-byte frame written into a bridged tap,
// from write() through tc ingress and the bridge, without and with the pin,
// in alternating rounds; it makes brpc0 and tpc0 and removes them.)
// (unpin deletes the clsact qdisc: a bench's A/B switch, never a lease's.)
import { writeSync } from 'node:fs';
import { withNetlink, getLink, setLink, createLink, deleteLink, createTun, dumpFilters, deleteClsact, testRunTimed, close, parseIp } from '@netgrant/core';
import { installPin, loadPin } from '@netgrant/lease';
import { parseMac } from '@netgrant/core';

const [verb, dev, macText, ...addrs] = process.argv.slice(2);
if (verb === 'path-cost') {
  const mac = Buffer.from('525400123456', 'hex');
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(1500, 2);
  ip[8] = 64;
  ip[9] = 17;
  parseIp('10.78.0.2')!.bytes.copy(ip, 12);
  parseIp('10.78.0.1')!.bytes.copy(ip, 16);
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(5001, 0);
  udp.writeUInt16BE(5201, 2);
  udp.writeUInt16BE(1480, 4);
  const frame = Buffer.concat([Buffer.from('020000000099', 'hex'), mac, Buffer.from([0x08, 0x00]), ip, udp, Buffer.alloc(1472)]);
  const N = 50000;
  const t = createTun({ name: 'tpc0', exclusive: true });
  const fd = t.fds[0]!;
  try {
    const rounds = withNetlink((nl) => {
      createLink(nl, { kind: 'bridge' }, { name: 'brpc0', up: true });
      const index = getLink(nl, 'tpc0')!.index;
      setLink(nl, index, { master: getLink(nl, 'brpc0')!.index, up: true });
      const perFrame = (): number => {
        const c0 = process.cpuUsage();
        for (let i = 0; i < N; i++) writeSync(fd, frame);
        const c = process.cpuUsage(c0);
        return ((c.user + c.system) * 1000) / N;
      };
      perFrame(); // warm-up
      const out: { unpinned: number; pinned: number }[] = [];
      for (let r = 0; r < 6; r++) {
        const one: { unpinned?: number; pinned?: number } = {};
        for (const pinned of r % 2 ? [true, false] : [false, true]) {
          if (pinned) installPin(nl, index, { mac, addrs: ['10.78.0.2'] }, 'ingress');
          one[pinned ? 'pinned' : 'unpinned'] = perFrame();
          if (pinned) deleteClsact(nl, index);
        }
        out.push(one as { unpinned: number; pinned: number });
      }
      return out;
    });
    const med = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    process.stdout.write(JSON.stringify({
      unpinnedNs: Math.round(med(rounds.map((r) => r.unpinned))),
      pinnedNs: Math.round(med(rounds.map((r) => r.pinned))),
      ratio: med(rounds.map((r) => r.unpinned / r.pinned)),
      rounds,
    }));
  } finally {
    close(fd);
    withNetlink((nl) => {
      const br = getLink(nl, 'brpc0');
      if (br) deleteLink(nl, br.index);
    });
  }
  process.exit(0);
}
if (verb === 'cost') {
  const mac = Buffer.from('525400123456', 'hex');
  const frame = (type: number, l3: Buffer) => Buffer.concat([Buffer.alloc(6, 0xaa), mac, Buffer.from([type >> 8, type & 0xff]), l3, Buffer.alloc(1400)]);
  const v4 = Buffer.alloc(40);
  v4[0] = 0x45;
  v4[9] = 6;
  parseIp('10.78.0.2')!.bytes.copy(v4, 12);
  const v6 = Buffer.alloc(60);
  v6[0] = 0x60;
  v6[6] = 6;
  parseIp('fd00::2')!.bytes.copy(v6, 8);
  const { prog, map } = loadPin({ mac, addrs: ['10.78.0.2', 'fd00::2'] });
  try {
    const ns = { 'ipv4-tcp': testRunTimed(prog, frame(0x0800, v4), 100000).ns, 'ipv6-tcp': testRunTimed(prog, frame(0x86dd, v6), 100000).ns };
    process.stdout.write(JSON.stringify({ ns }));
  } finally {
    close(prog);
    if (map !== null) close(map);
  }
  process.exit(0);
}
const mac = parseMac(macText ?? '');
if (!dev || (verb !== 'unpin' && (verb !== 'pin' || !mac))) throw new Error('usage: pin-tap pin DEV GUEST_MAC ADDR... | pin-tap unpin DEV');
const filters = withNetlink((nl) => {
  const link = getLink(nl, dev);
  if (!link) throw new Error(`no device ${dev}`);
  if (verb === 'pin') installPin(nl, link.index, { mac: mac!, addrs }, 'ingress');
  else deleteClsact(nl, link.index);
  return dumpFilters(nl, link.index, 'ingress').filter((f) => f.handle !== 0);
});
process.stdout.write(JSON.stringify({ dev, filters }));
