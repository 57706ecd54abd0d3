// The pinning suite (per-lease anti-spoofing filters), shared by the native
// file (packages/lease/test/pin.test.ts, this machine's 6.18 kernel) and the
// VM-lane twin (pin.vm.test.ts, Debian's stock 6.1): real taps on a real
// bridge, frames written by a process with no capability at all, watched on
// the bridge by Python's AF_PACKET socket.
import type { Test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Netlink, createLink, setLink, getLink, deleteLink, createTun, close, open, O_RDWR, dumpFilters, listOpenFds, testRun, closeQuietly,
  TC_ACT_SHOT, TC_ACT_UNSPEC, InputError, SysError,
} from '@netgrant/core';
import { installPin, loadPin, PIN_FILTER_NAME, type PinSpec } from '@netgrant/lease';
import { run, sh, caught, tempDir, PYTHON, NOBODY } from './harness.js';
import {
  BROADCAST, mac, eth, vlanTag, arp, ipv4, udp, icmpEcho, ipv6, icmp6, nd, ra, mldReportHbh, lla, solicitedNode, mcastMac, llaOpt,
} from './pin-frames.js';

const GUEST = mac('52:54:00:12:34:56');
const FOREIGN = mac('52:54:00:66:66:66');
const A4 = '10.9.0.2';
const GW4 = '10.9.0.1';
const A6 = 'fd00:9::2';
const LLA = lla(GUEST);
const SPEC: PinSpec = { mac: GUEST, addrs: [A4, A6] };
const ALL_NODES = 'ff02::1';

const e4 = (p: Buffer, src: Buffer = GUEST, dst: Buffer = BROADCAST) => eth(dst, src, 0x0800, p);
const e6 = (p: Buffer, dst: Buffer = mcastMac(ALL_NODES)) => eth(dst, GUEST, 0x86dd, p);
const earp = (p: Buffer, src: Buffer = GUEST) => eth(BROADCAST, src, 0x0806, p);
const ping4 = (src: string, tag: string) => ipv4({ src, dst: GW4, proto: 1, payload: icmpEcho(7, Buffer.from(tag)) });
const udp4 = (src: string, dst: string, sp: number, dp: number, tag: string) => ipv4({ src, dst, proto: 17, payload: udp(sp, dp, Buffer.from(tag)) });
const udp6 = (src: string, dst: string, sp: number, dp: number, tag: string) => ipv6({ src, dst, nh: 17, payload: udp(sp, dp, Buffer.from(tag)) });
/** A DHCP client message (BOOTREQUEST, with magic cookie and message type) for chaddr, tagged in its sname field. */
const bootp = (chaddr: Buffer, tag: string) => {
  const b = Buffer.alloc(240);
  b.set([1, 1, 6], 0);
  chaddr.copy(b, 28);
  Buffer.from(tag).copy(b, 44);
  b.writeUInt32BE(0x63825363, 236);
  return Buffer.concat([b, Buffer.from([53, 1, 1, 255])]);
};
const dhcp4 = (src: string, dst: string, chaddr: Buffer, tag: string, moreFrags = false) =>
  ipv4({ src, dst, proto: 17, payload: udp(68, 67, bootp(chaddr, tag)), moreFrags });
const echo6 = (src: string, tag: string) => ipv6({ src, dst: ALL_NODES, nh: 58, payload: icmp6(128, 0, Buffer.concat([Buffer.from([0, 1, 0, 1]), Buffer.from(tag)])) });

/** Every frame the guest may send... */
export const LEGIT: [string, Buffer][] = [
  ['ARP request from the lease', earp(arp({ op: 1, sha: GUEST, spa: A4, tpa: GW4 }))],
  ['ARP reply from the lease', earp(arp({ op: 2, sha: GUEST, spa: A4, tha: FOREIGN, tpa: GW4 }))],
  ['ARP probe (sender 0.0.0.0)', earp(arp({ op: 1, sha: GUEST, spa: '0.0.0.0', tpa: A4 }))],
  ['IPv4 ping from the lease address', e4(ping4(A4, 'ping4'))],
  ['IPv4 UDP from the lease address', e4(udp4(A4, GW4, 5000, 53, 'udp4'))],
  ['IPv4 TCP-ish unicast from the lease address', e4(ipv4({ src: A4, dst: GW4, proto: 6, payload: Buffer.alloc(20, 1) }), GUEST, FOREIGN)],
  ['DHCP discover from 0.0.0.0', e4(dhcp4('0.0.0.0', '255.255.255.255', GUEST, 'discover'))],
  ['DHCP renewal from the lease address', e4(dhcp4(A4, GW4, GUEST, 'renew'), GUEST, FOREIGN)],
  ['IPv4 non-first fragment from the lease address', e4(ipv4({ src: A4, dst: GW4, proto: 17, payload: Buffer.from('fragment-tail'), id: 9, fragOff: 1480 }))],
  ['IPv4 first fragment (UDP) from the lease address', e4(ipv4({ src: A4, dst: GW4, proto: 17, payload: udp(5000, 53, Buffer.from('frag-head')), id: 9, moreFrags: true }))],
  ['IPv6 from the EUI-64 link-local address', e6(echo6(LLA, 'lla'))],
  ['IPv6 UDP from a pinned address', e6(udp6(A6, ALL_NODES, 5000, 5001, 'pinned6'))],
  ['IPv6 TCP from a pinned address', e6(ipv6({ src: A6, dst: 'fd00:9::1', nh: 6, payload: Buffer.alloc(20, 2) }))],
  ['DAD neighbour solicitation from ::', e6(ipv6({ src: '::', dst: solicitedNode(A6), nh: 58, hopLimit: 255, payload: nd(135, A6) }), mcastMac(solicitedNode(A6)))],
  ['MLDv2 report from :: (hop-by-hop router alert)', e6(ipv6({ src: '::', dst: 'ff02::16', hopLimit: 1, ...mldReportHbh(solicitedNode(A6)) }), mcastMac('ff02::16'))],
  ['MLDv2 report from the link-local address', e6(ipv6({ src: LLA, dst: 'ff02::16', hopLimit: 1, ...mldReportHbh(solicitedNode(LLA)) }), mcastMac('ff02::16'))],
  ['neighbour solicitation from a pinned address, own source LL option', e6(ipv6({ src: A6, dst: solicitedNode('fd00:9::1'), nh: 58, hopLimit: 255, payload: nd(135, 'fd00:9::1', llaOpt(1, GUEST)) }))],
  ['neighbour advertisement for a pinned address, own target LL option', e6(ipv6({ src: LLA, dst: ALL_NODES, nh: 58, hopLimit: 255, payload: nd(136, A6, llaOpt(2, GUEST)) }))],
  ['neighbour advertisement for the link-local address', e6(ipv6({ src: LLA, dst: ALL_NODES, nh: 58, hopLimit: 255, payload: nd(136, LLA) }))],
  ['router solicitation from the link-local address', e6(ipv6({ src: LLA, dst: 'ff02::2', nh: 58, hopLimit: 255, payload: icmp6(133, 0, Buffer.alloc(4)) }))],
  ['DHCPv6 solicit from the link-local address', e6(udp6(LLA, 'ff02::1:2', 546, 547, 'solicit'))],
];

/** ...and every kind of spoof, none of which may reach the bridge. */
export const SPOOFS: [string, Buffer][] = [
  ['foreign source MAC', e4(ping4(A4, 'foreign-mac'), FOREIGN)],
  ['broadcast source MAC', e4(ping4(A4, 'bcast-src'), BROADCAST)],
  ['foreign IPv4 source', e4(ping4('10.9.0.66', 'foreign-ip4'))],
  ['foreign ARP sender MAC', earp(arp({ op: 1, sha: FOREIGN, spa: A4, tpa: GW4 }))],
  ['foreign ARP sender IP', earp(arp({ op: 1, sha: GUEST, spa: '10.9.0.66', tpa: GW4 }))],
  ['gratuitous ARP for another address (the gateway)', earp(arp({ op: 1, sha: GUEST, spa: GW4, tpa: GW4 }))],
  ['gratuitous ARP reply for another address', earp(arp({ op: 2, sha: GUEST, spa: GW4, tha: BROADCAST, tpa: GW4 }))],
  ['ARP reply claiming 0.0.0.0', earp(arp({ op: 2, sha: GUEST, spa: '0.0.0.0', tpa: GW4 }))],
  ['ARP with non-Ethernet sizes', earp(Buffer.concat([Buffer.from('000108000804', 'hex'), arp({ op: 1, sha: GUEST, spa: A4, tpa: GW4 }).subarray(6)]))],
  ['DHCP discover naming another MAC (chaddr)', e4(dhcp4('0.0.0.0', '255.255.255.255', FOREIGN, 'chaddr0'))],
  ['DHCP renewal from the lease address naming another MAC (chaddr)', e4(dhcp4(A4, GW4, FOREIGN, 'chaddr4'), GUEST, FOREIGN)],
  ['DHCP request from the lease address as a first fragment', e4(dhcp4(A4, GW4, GUEST, 'fragreq', true))],
  ['DHCP discover cut short before chaddr', e4(udp4('0.0.0.0', '255.255.255.255', 68, 67, 'short'))],
  ['DHCP offer (UDP 67 -> 68) from the lease address', e4(udp4(A4, '255.255.255.255', 67, 68, 'offer'))],
  ['DHCP offer from 0.0.0.0', e4(udp4('0.0.0.0', '255.255.255.255', 67, 68, 'offer0'))],
  ['DHCPv6 reply (UDP 547 -> 546)', e6(udp6(LLA, 'fe80::1', 547, 546, 'reply6'))],
  ['router advertisement', e6(ipv6({ src: LLA, dst: ALL_NODES, nh: 58, hopLimit: 255, payload: ra() }))],
  ['ICMPv6 redirect', e6(ipv6({ src: LLA, dst: 'fe80::1', nh: 58, hopLimit: 255, payload: icmp6(137, 0, Buffer.alloc(36)) }))],
  ['VLAN-tagged frame (802.1Q)', vlanTag(e4(ping4(A4, 'vlan')), 5)],
  ['802.1ad (Q-in-Q) tagged frame', vlanTag(vlanTag(e4(ping4(A4, 'qinq')), 6), 7, 0x88a8)],
  ['unknown ethertype', eth(BROADCAST, GUEST, 0x88b5, Buffer.from('local experimental ethertype'))],
  ['802.3 length field instead of an ethertype', eth(BROADCAST, GUEST, 46, Buffer.alloc(46, 0x42))],
  ['truncated IPv4 header', e4(ping4(A4, 'trunc').subarray(0, 12))],
  ['truncated ARP', earp(arp({ op: 1, sha: GUEST, spa: A4, tpa: GW4 }).subarray(0, 20))],
  ['truncated IPv6 header', e6(echo6(LLA, 'trunc6').subarray(0, 30))],
  ['IPv4 UDP header cut short', e4(Buffer.concat([ipv4({ src: A4, dst: GW4, proto: 17, payload: Buffer.alloc(0) }), Buffer.from([0x00])]))],
  [':: not for DAD (UDP)', e6(udp6('::', ALL_NODES, 1000, 1000, 'unspec6'))],
  [':: neighbour solicitation to a unicast address', e6(ipv6({ src: '::', dst: 'fd00:9::1', nh: 58, hopLimit: 255, payload: nd(135, 'fd00:9::1') }))],
  [':: neighbour advertisement', e6(ipv6({ src: '::', dst: ALL_NODES, nh: 58, hopLimit: 255, payload: nd(136, A6) }))],
  ['0.0.0.0 not DHCP (ICMP)', e4(ping4('0.0.0.0', 'unspec4'))],
  ['0.0.0.0 UDP to port 67 from another port', e4(udp4('0.0.0.0', '255.255.255.255', 1234, 67, 'unspec4b'))],
  ['0.0.0.0 DHCP discover to a unicast address', e4(udp4('0.0.0.0', GW4, 68, 67, 'unspec4c'))],
  ['0.0.0.0 fragment', e4(ipv4({ src: '0.0.0.0', dst: '255.255.255.255', proto: 17, payload: udp(68, 67, Buffer.from('frag0')), moreFrags: true }))],
  ['foreign IPv6 source', e6(udp6('fd00:9::66', ALL_NODES, 5000, 5001, 'foreign6'))],
  ['link-local address of another MAC', e6(echo6(lla(FOREIGN), 'otherlla'))],
  ['DHCPv6 solicit from another MAC\'s link-local address', e6(udp6(lla(FOREIGN), 'ff02::1:2', 546, 547, 'solicit-foreign'))],
  ['neighbour advertisement for a foreign target', e6(ipv6({ src: LLA, dst: ALL_NODES, nh: 58, hopLimit: 255, payload: nd(136, 'fd00:9::1', llaOpt(2, GUEST)) }))],
  ['neighbour advertisement with a foreign target LL option', e6(ipv6({ src: LLA, dst: ALL_NODES, nh: 58, hopLimit: 255, payload: nd(136, A6, llaOpt(2, FOREIGN)) }))],
  ['neighbour solicitation with a foreign source LL option', e6(ipv6({ src: A6, dst: solicitedNode('fd00:9::1'), nh: 58, hopLimit: 255, payload: nd(135, 'fd00:9::1', llaOpt(1, FOREIGN)) }))],
  ['IPv6 fragment header', e6(ipv6({ src: A6, dst: 'fd00:9::1', nh: 44, payload: Buffer.concat([Buffer.from([17, 0, 0, 1, 0, 0, 0, 9]), udp(547, 546, Buffer.from('frag6'))]) }))],
  ['IPv6 destination-options header', e6(ipv6({ src: A6, dst: 'fd00:9::1', nh: 60, payload: Buffer.concat([Buffer.from([17, 0, 1, 4, 0, 0, 0, 0]), udp(547, 546, Buffer.from('dstopt'))]) }))],
  ['hop-by-hop header before UDP', e6(ipv6({ src: A6, dst: 'fd00:9::1', nh: 0, payload: Buffer.concat([Buffer.from([17, 0, 1, 4, 0, 0, 0, 0]), udp(5000, 5001, Buffer.from('hbh-udp'))]) }))],
];

/**
 * Spoofs a bridge drops by itself, filter or not: a source MAC that is not
 * unicast (br_handle_frame). Others (truncated IP headers) are dropped by
 * multicast snooping and br_netfilter's header checks, both off on the
 * control's bridge.
 */
const BRIDGE_DROPS = ['broadcast source MAC'];

const BRNF = ['bridge-nf-call-iptables', 'bridge-nf-call-ip6tables', 'bridge-nf-call-arptables'].map((n) => `/proc/sys/net/bridge/${n}`);
/** Run fn with br_netfilter's header checks off in this namespace (if br_netfilter is there at all). */
async function withoutBrNetfilter<T>(fn: () => Promise<T>): Promise<T> {
  const saved = BRNF.filter((p) => existsSync(p)).map((p) => [p, readFileSync(p, 'utf8')] as const);
  for (const [p] of saved) writeFileSync(p, '0');
  try {
    return await fn();
  } finally {
    for (const [p, v] of saved) writeFileSync(p, v);
  }
}

/** The forms a frame can take on the bridge: as sent, and with its outer VLAN tag moved into metadata. */
function forms(f: Buffer): string[] {
  const out = [f.toString('hex')];
  const tpid = f.length >= 18 ? f.readUInt16BE(12) : 0;
  if (tpid === 0x8100 || tpid === 0x88a8) out.push(Buffer.concat([f.subarray(0, 12), f.subarray(16)]).toString('hex'));
  return out;
}
const appeared = (seen: Set<string>, f: Buffer): boolean => forms(f).some((h) => seen.has(h));

/** The end-of-batch marker: a legitimate frame the watcher stops at. */
const sentinel = (tag: string, src: Buffer = GUEST) => e4(udp4(A4, GW4, 9, 9, `end-of-batch-${tag}`), src);

// The watcher: an AF_PACKET socket on the bridge (promiscuous), printing
// every frame the bridge receives (not its own output) in hex until it sees
// the sentinel or times out.
const WATCHER = `
import socket, select, struct, sys, time
ifname, end_hex, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((ifname, 0))
s.setsockopt(263, 1, struct.pack('iHH8s', socket.if_nametoindex(ifname), 1, 0, b''))
print('ready', flush=True)
stop, deadline = bytes.fromhex(end_hex), time.time() + limit
while True:
    left = deadline - time.time()
    if left <= 0 or not select.select([s], [], [], left)[0]:
        print('timeout', flush=True)
        break
    data, addr = s.recvfrom(65536)
    if addr[2] == socket.PACKET_OUTGOING:
        continue
    print(data.hex(), flush=True)
    if data == stop:
        break
`;

// The lessee: uid/gid 65534, no groups, no capability in any set, no_new_privs;
// it reports its credentials, then writes each frame to the tap fd (3).
const WRITER = `
import os, sys
st = dict(l.split(':', 1) for l in open('/proc/self/status') if ':' in l)
print(' '.join(k + '=' + st[k].split()[0] for k in ('Uid', 'Gid', 'CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs')), flush=True)
prefix = bytes.fromhex(os.environ.get('PREFIX', ''))
for h in sys.argv[1:]:
    try:
        os.write(3, prefix + bytes.fromhex(h))
        print('ok', flush=True)
    except OSError as e:
        print('error', e.errno, flush=True)
`;
export const SETPRIV = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs'];
const ZERO_CAPS = `Uid=${NOBODY} Gid=${NOBODY} CapInh=0000000000000000 CapPrm=0000000000000000 CapEff=0000000000000000 CapBnd=0000000000000000 CapAmb=0000000000000000 NoNewPrivs=1`;

/** Write frames into tapFd as a zero-capability process; the frames the bridge saw. */
export async function throughTap(bridge: string, tapFd: number, frames: Buffer[], end: Buffer, prefix = ''): Promise<{ seen: Set<string>; writer: string[]; timedOut: boolean }> {
  // It stops at the sentinel; the limit only bounds a run where the sentinel is lost (generous: the VM lane is slow).
  const watcher = spawn(PYTHON, ['-c', WATCHER, bridge, end.toString('hex'), '60'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  watcher.stdout.on('data', (d) => (out += d));
  watcher.stderr.on('data', (d) => (err += d));
  const closed = new Promise<void>((resolve) => watcher.on('close', () => resolve()));
  for (let i = 0; !out.includes('ready\n'); i++) {
    if (i > 500 || watcher.exitCode !== null) throw new Error(`watcher did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  const w = run([...SETPRIV, PYTHON, '-c', WRITER, ...[...frames, end].map((f) => f.toString('hex'))], { stdio: ['ignore', 'pipe', 'pipe', tapFd], env: { PREFIX: prefix } });
  await closed;
  if (w.status !== 0) throw new Error(`writer failed: ${w.stderr}`);
  const lines = out.split('\n').filter(Boolean);
  return { seen: new Set(lines.slice(1)), writer: w.stdout.split('\n').filter(Boolean), timedOut: lines.includes('timeout') };
}

interface Lease {
  name: string;
  index: number;
  fd: number;
}

/** A tap on bridge, up, not yet pinned; the test process holds its only fd. */
function tapOn(nl: Netlink, bridge: string, name: string): Lease {
  const t = createTun({ name, exclusive: true });
  const br = getLink(nl, bridge)!;
  const index = getLink(nl, name)!.index;
  setLink(nl, index, { master: br.index, up: true });
  return { name, index, fd: t.fds[0]! };
}

const clsactOf = (dev: string) => run(['tc', 'qdisc', 'show', 'dev', dev]).stdout;

/** Load the modules the suite needs (bridge, clsact, cls_bpf, macvtap) into Debian's kernel in the VM lane (its initramfs loads only the lane's own). */
export function loadGuestModules(): void {
  const release = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
  const dir = `/var/cache/netgrant-guest/linux-image-${release}/lib/modules/${release}/kernel`;
  if (!existsSync(dir)) return; // not the guest kernel: modules come from the host
  const files = new Map<string, string>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.ko$/.test(e)) files.set(e.slice(0, -3).replace(/-/g, '_'), p);
    }
  };
  walk(dir);
  const loaded = new Set(run(['cat', '/proc/modules']).stdout.split('\n').map((l) => l.split(' ')[0]));
  const load = (name: string): void => {
    if (loaded.has(name)) return;
    const file = files.get(name);
    if (!file) return; // built in
    const deps = execFileSync('modinfo', ['-F', 'depends', file], { encoding: 'utf8' }).trim();
    for (const d of deps ? deps.split(',') : []) load(d.replace(/-/g, '_'));
    const r = run(['insmod', file]);
    if (r.status !== 0 && !/File exists/.test(r.stderr)) throw new Error(`insmod ${file}: ${r.stderr}`);
    loaded.add(name);
  };
  for (const m of ['bridge', 'sch_ingress', 'cls_bpf', 'macvtap']) load(m);
}

/** Register the suite's tests on test (then the file calls test.run()). */
export function pinSuite(test: Test): void {
  let nl: Netlink;
  const BR = 'brpin0';
  // The default bridge (multicast snooping on, br_netfilter's checks as this
  // namespace's sysctls say), and one that checks nothing: snooping off and,
  // while its tests run, br_netfilter off.
  const BR_NOSNOOP = 'brpin1';

  test.before(() => {
    nl = Netlink.open();
    createLink(nl, { kind: 'bridge' }, { name: BR, up: true });
    const r = run(['ip', 'link', 'add', BR_NOSNOOP, 'up', 'type', 'bridge', 'mcast_snooping', '0']);
    if (r.status !== 0) throw new Error(r.stderr);
  });
  test.after(() => nl.close());

  test('the program passes the verifier, fixed and learn mode, and judges every case as expected (BPF_PROG_TEST_RUN)', () => {
    for (const spec of [SPEC, { mac: 'learn' as const, addrs: [A4, A6] }]) {
      const { prog, map } = loadPin(spec);
      try {
        for (const [what, f] of LEGIT) assert.is(testRun(prog, f), TC_ACT_UNSPEC, `${spec.mac === 'learn' ? 'learn: ' : ''}legitimate: ${what}`);
        for (const [what, f] of SPOOFS) {
          if (spec.mac === 'learn' && what === 'foreign source MAC') continue; // learn mode took GUEST first; covered below
          // The test-run harness itself refuses an skb whose IP header is cut short (the tap test writes those).
          if (/^truncated IPv/.test(what)) continue;
          assert.is(testRun(prog, f), TC_ACT_SHOT, `${spec.mac === 'learn' ? 'learn: ' : ''}spoof: ${what}`);
        }
        if (spec.mac === 'learn') assert.is(testRun(prog, e4(ping4(A4, 'x'), FOREIGN)), TC_ACT_SHOT, 'learn: a second MAC');
      } finally {
        closeQuietly(prog);
        if (map !== null) closeQuietly(map);
      }
    }
  });

  test('control: on an unpinned tap the same spoofs do reach a bridge (so their absence below is the filter\'s doing)', async () => {
    const t = tapOn(nl, BR_NOSNOOP, 'pinc0');
    try {
      const r = await withoutBrNetfilter(() => throughTap(BR_NOSNOOP, t.fd, SPOOFS.map(([, f]) => f), sentinel('control')));
      assert.ok(!r.timedOut, 'the sentinel came through');
      const missing = SPOOFS.filter(([, f]) => !appeared(r.seen, f)).map(([w]) => w);
      assert.equal(missing, BRIDGE_DROPS);
    } finally {
      close(t.fd);
    }
  });

  for (const [bridge, how] of [[BR, 'a bridge that checks what it can'], [BR_NOSNOOP, 'a bridge that checks nothing']] as const) {
    test(`a zero-capability lessee's spoofs (${SPOOFS.length} kinds) never reach the bridge; its ${LEGIT.length} kinds of legitimate frames do (${how})`, async () => {
      const fdsBefore = listOpenFds();
      const t = tapOn(nl, bridge, 'pin0');
      try {
        installPin(nl, t.index, SPEC, 'ingress');
        assert.equal(listOpenFds(), [...fdsBefore, t.fd].sort((a, b) => a - b), 'installPin left no fd open');
        const frames = [...SPOOFS.map(([, f]) => f), ...LEGIT.map(([, f]) => f)];
        const send = () => throughTap(bridge, t.fd, frames, sentinel('fixed'));
        const r = bridge === BR ? await send() : await withoutBrNetfilter(send);
        assert.is(r.writer[0], ZERO_CAPS, 'the writer has no capability');
        assert.ok(!r.timedOut, 'the sentinel came through');
        // Every write was accepted by the tap: the drops are the filter's.
        assert.equal(r.writer.slice(1), frames.map(() => 'ok').concat('ok'));
        const leaked = SPOOFS.filter(([, f]) => appeared(r.seen, f)).map(([w]) => w);
        const missing = LEGIT.filter(([, f]) => !r.seen.has(f.toString('hex'))).map(([w]) => w);
        assert.equal(leaked, [], 'spoofs on the bridge');
        assert.equal(missing, [], 'legitimate frames missing from the bridge');
      } finally {
        close(t.fd);
      }
    });
  }

  test('learn mode: the first source MAC is learned, a second one is dropped, the first still passes', async () => {
    const t = tapOn(nl, BR, 'pinl0');
    const L1 = mac('52:54:00:aa:00:01');
    const L2 = mac('52:54:00:aa:00:02');
    try {
      installPin(nl, t.index, { mac: 'learn', addrs: [A4] }, 'ingress');
      const mcastFirst = e4(ping4(A4, 'mcast-first'), mac('01:00:5e:00:00:01'));
      const first = e4(ping4(A4, 'learn-first'), L1);
      const second = e4(ping4(A4, 'learn-second'), L2);
      const again = e4(ping4(A4, 'learn-again'), L1);
      const arpL2 = earp(arp({ op: 1, sha: L2, spa: A4, tpa: GW4 }), L2);
      const r = await throughTap(BR, t.fd, [mcastFirst, first, second, arpL2, again], sentinel('learn', L1));
      assert.is(r.writer[0], ZERO_CAPS);
      assert.ok(!r.timedOut, 'the sentinel came through');
      assert.ok(!r.seen.has(mcastFirst.toString('hex')), 'a multicast source is neither passed nor learned');
      assert.ok(r.seen.has(first.toString('hex')), 'the first MAC passes');
      assert.ok(!r.seen.has(second.toString('hex')), 'a second MAC is dropped');
      assert.ok(!r.seen.has(arpL2.toString('hex')), 'ARP from the second MAC is dropped');
      assert.ok(r.seen.has(again.toString('hex')), 'the first MAC still passes');
      assert.ok(!r.timedOut);
    } finally {
      close(t.fd);
    }
  });

  test('the filter is visible (dump, tc), a zero-capability process cannot remove it, and it dies with the device', async () => {
    const t = tapOn(nl, BR, 'pind0');
    let closed = false;
    try {
      installPin(nl, t.index, SPEC, 'ingress');
      const filters = dumpFilters(nl, t.index, 'ingress').filter((f) => f.handle !== 0);
      assert.is(filters.length, 1);
      assert.is(filters[0]!.kind, 'bpf');
      assert.is(filters[0]!.prio, 1);
      assert.is(filters[0]!.protocol, 3);
      assert.is(filters[0]!.bpf?.name, PIN_FILTER_NAME);
      assert.is(filters[0]!.bpf?.direct, true);
      assert.ok(filters[0]!.bpf?.id !== undefined && filters[0]!.bpf.id > 0);
      assert.equal(dumpFilters(nl, t.index, 'egress'), [], 'nothing at egress');
      const tc = run(['tc', 'filter', 'show', 'dev', 'pind0', 'ingress']).stdout;
      assert.match(tc, /bpf chain 0 handle 0x1 netgrant-pin direct-action/);
      assert.match(clsactOf('pind0'), /qdisc clsact ffff:/);

      // A process with no capability (the lessee) cannot remove it: tc...
      for (const argv of [['tc', 'filter', 'del', 'dev', 'pind0', 'ingress', 'pref', '1'], ['tc', 'qdisc', 'del', 'dev', 'pind0', 'clsact']]) {
        const r = run([...SETPRIV, ...argv]);
        assert.is.not(r.status, 0, `${argv.join(' ')} as uid ${NOBODY}`);
        assert.match(r.stderr, /Operation not permitted/);
      }
      // ...nor a raw RTM_DELTFILTER / RTM_DELQDISC of its own, holding the tap fd.
      const py = run([...SETPRIV, PYTHON, '-c', NL_DELETE, String(t.index)], { stdio: ['ignore', 'pipe', 'pipe', t.fd] });
      assert.is(py.stdout.trim(), 'RTM_DELTFILTER errno 1\nRTM_DELQDISC errno 1'.split('\n').join('\n'), py.stderr);
      assert.is(dumpFilters(nl, t.index, 'ingress').filter((f) => f.handle !== 0).length, 1, 'still there');

      // The device goes with its last fd; a new one with the same name has no filter.
      close(t.fd);
      closed = true;
      assert.is(getLink(nl, 'pind0'), null, 'the tap is gone');
      const u = tapOn(nl, BR, 'pind0');
      try {
        assert.equal(dumpFilters(nl, u.index, 'ingress'), []);
        assert.equal(dumpFilters(nl, u.index, 'egress'), []);
        assert.not.match(clsactOf('pind0'), /clsact/);
        // And its frames are not filtered: a foreign MAC reaches the bridge.
        const f = e4(ping4(A4, 'after'), FOREIGN);
        const r = await throughTap(BR, u.fd, [f], sentinel('after', FOREIGN));
        assert.ok(!r.timedOut, 'the sentinel came through');
        assert.ok(r.seen.has(f.toString('hex')), 'the new device is not filtered');
      } finally {
        close(u.fd);
      }
    } finally {
      if (!closed) close(t.fd);
    }
  });

  test('macvtap: at the egress hook the same spoofs never leave through the lower device, the legitimate frames do (and do unpinned: control)', async () => {
    // The lower is a veth end; its peer is watched. The macvtap's char
    // device is found in a sysfs mounted from this namespace (the class is
    // namespace-tagged) and opened through a private node.
    const { dir, cleanup } = tempDir();
    const fds: number[] = [];
    try {
      sh(`ip link add mvl0 type veth peer name mvl1 && ip link set mvl0 up && ip link set mvl1 up && mkdir ${dir}/sys && mount -t sysfs sysfs ${dir}/sys`);
      const openMacvtap = (name: string): { index: number; fd: number } => {
        createLink(nl, { kind: 'macvtap', mode: 'bridge' }, { name, parent: getLink(nl, 'mvl0')!.index, up: true });
        const index = getLink(nl, name)!.index;
        const [maj, min] = readFileSync(`${dir}/sys/class/net/${name}/macvtap/tap${index}/dev`, 'utf8').trim().split(':');
        const node = `${dir}/${name}`;
        sh(`mknod -m 600 ${node} c ${maj} ${min}`);
        const fd = open(node, O_RDWR);
        fds.push(fd);
        unlinkSync(node);
        return { index, fd };
      };
      // A macvtap fd speaks with a virtio-net header in front of every frame (10 bytes, none of its flags set).
      const VNET = '00'.repeat(10);
      const plain = openMacvtap('pinmvc0');
      const control = await withoutBrNetfilter(() => throughTap('mvl1', plain.fd, SPOOFS.map(([, f]) => f), sentinel('mvcontrol'), VNET));
      assert.ok(!control.timedOut, 'the sentinel came through');
      assert.equal(SPOOFS.filter(([, f]) => !appeared(control.seen, f)).map(([w]) => w), [], 'unpinned, every spoof leaves');
      deleteLink(nl, plain.index);
      const m = openMacvtap('pinmv0');
      installPin(nl, m.index, SPEC, 'egress');
      assert.equal(dumpFilters(nl, m.index, 'ingress'), []);
      assert.is(dumpFilters(nl, m.index, 'egress').filter((x) => x.handle !== 0)[0]?.bpf?.name, PIN_FILTER_NAME);
      const frames = [...SPOOFS.map(([, f]) => f), ...LEGIT.map(([, f]) => f)];
      const r = await throughTap('mvl1', m.fd, frames, sentinel('macvtap'), VNET);
      assert.is(r.writer[0], ZERO_CAPS);
      assert.ok(!r.timedOut, 'the sentinel came through');
      assert.equal(r.writer.slice(1), frames.map(() => 'ok').concat('ok'));
      assert.equal(SPOOFS.filter(([, f]) => appeared(r.seen, f)).map(([w]) => w), [], 'spoofs left the macvtap');
      assert.equal(LEGIT.filter(([, f]) => !r.seen.has(f.toString('hex'))).map(([w]) => w), [], 'legitimate frames missing');
      deleteLink(nl, m.index);
    } finally {
      for (const fd of fds) closeQuietly(fd);
      sh(`umount ${dir}/sys; ip link del mvl0`);
      cleanup();
    }
  });

  test('egress hook: the filter attaches there and is seen there (the macvtap case)', () => {
    const t = tapOn(nl, BR, 'pine0');
    try {
      installPin(nl, t.index, SPEC, 'egress');
      assert.equal(dumpFilters(nl, t.index, 'ingress'), []);
      const f = dumpFilters(nl, t.index, 'egress').filter((x) => x.handle !== 0);
      assert.is(f.length, 1);
      assert.is(f[0]!.bpf?.name, PIN_FILTER_NAME);
      assert.match(run(['tc', 'filter', 'show', 'dev', 'pine0', 'egress']).stdout, /netgrant-pin direct-action/);
    } finally {
      close(t.fd);
    }
  });

  test('bad inputs: clear errors, nothing attached, no fd left open', () => {
    const t = tapOn(nl, BR, 'pinb0');
    try {
      const fds = listOpenFds();
      const bad: [string, () => void, RegExp][] = [
        ['short MAC', () => installPin(nl, t.index, { mac: Buffer.from([1, 2, 3]), addrs: [A4] }, 'ingress'), /bad guest MAC .*3 bytes, not 6/],
        ['multicast MAC', () => installPin(nl, t.index, { mac: mac('01:00:5e:00:00:01'), addrs: [A4] }, 'ingress'), /multicast/],
        ['zero MAC', () => installPin(nl, t.index, { mac: Buffer.alloc(6), addrs: [A4] }, 'ingress'), /all zero/],
        ['MAC text', () => installPin(nl, t.index, { mac: '52:54:00:12:34:56' as unknown as Buffer, addrs: [A4] }, 'ingress'), /bad guest MAC/],
        ['bad IPv4', () => installPin(nl, t.index, { mac: GUEST, addrs: ['10.9.0.300'] }, 'ingress'), /bad address: "10.9.0.300"/],
        ['scoped IPv6', () => installPin(nl, t.index, { mac: GUEST, addrs: ['fe80::1%eth0'] }, 'ingress'), /bad address/],
        ['a name', () => installPin(nl, t.index, { mac: GUEST, addrs: ['localhost'] }, 'ingress'), /bad address/],
        ['0.0.0.0', () => installPin(nl, t.index, { mac: GUEST, addrs: ['0.0.0.0'] }, 'ingress'), /unspecified/],
        ['::', () => installPin(nl, t.index, { mac: GUEST, addrs: ['::'] }, 'ingress'), /unspecified/],
        ['multicast IPv6', () => installPin(nl, t.index, { mac: GUEST, addrs: ['ff02::1'] }, 'ingress'), /multicast/],
        ['link-local IPv6', () => installPin(nl, t.index, { mac: GUEST, addrs: [lla(FOREIGN)] }, 'ingress'), /link-local/],
        ['broadcast', () => installPin(nl, t.index, { mac: GUEST, addrs: ['255.255.255.255'] }, 'ingress'), /multicast, broadcast/],
        ['too many', () => installPin(nl, t.index, { mac: GUEST, addrs: Array.from({ length: 65 }, (_, i) => `10.1.${i}.1`) }, 'ingress'), /at most 64/],
        ['ifindex 0', () => installPin(nl, 0, SPEC, 'ingress'), /bad interface index: 0/],
        ['ifindex -1', () => installPin(nl, -1, SPEC, 'ingress'), /bad interface index/],
        ['ifindex 1.5', () => installPin(nl, 1.5, SPEC, 'ingress'), /bad interface index/],
        ['hook', () => installPin(nl, t.index, SPEC, 'both' as 'ingress'), /bad hook/],
      ];
      for (const [what, fn, re] of bad) {
        const e = caught(fn);
        assert.ok(e, `${what}: should fail`);
        assert.is(e!.name, 'InputError', `${what}: ${e!.message}`);
        assert.match(e!.message, re, what);
      }
      // A device that does not exist: the kernel's ENODEV, as a SysError.
      const gone = caught(() => installPin(nl, 999999, SPEC, 'ingress'));
      assert.is(gone?.name, 'SysError');
      assert.is(gone?.code, 'ENODEV', gone?.message);
      assert.equal(dumpFilters(nl, t.index, 'ingress'), [], 'nothing attached');
      assert.not.match(clsactOf('pinb0'), /clsact/);
      assert.equal(listOpenFds(), fds, 'no fd left open');
      // Installed once, a second install fails (EEXIST) and leaves the first intact.
      installPin(nl, t.index, SPEC, 'ingress');
      const again = caught(() => installPin(nl, t.index, { mac: 'learn', addrs: [] }, 'ingress'));
      assert.is(again?.code, 'EEXIST', again?.message);
      const f = dumpFilters(nl, t.index, 'ingress').filter((x) => x.handle !== 0);
      assert.is(f.length, 1);
      assert.is(f[0]!.bpf?.name, PIN_FILTER_NAME);
      assert.equal(listOpenFds(), fds, 'no fd left open');
      assert.ok(InputError && SysError);
    } finally {
      close(t.fd);
    }
  });
}

// An unprivileged process's own netlink requests to remove the filter and
// the qdisc: prints each request's errno (1 = EPERM).
const NL_DELETE = `
import socket, struct, sys
idx = int(sys.argv[1])
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
s.bind((0, 0))
def req(kind, mtype, handle, parent, info, seq):
    tcm = struct.pack('BBHiIII', 0, 0, 0, idx, handle, parent, info)
    k = kind.encode() + b'\\0'
    attr = struct.pack('HH', 4 + len(k), 1) + k + b'\\0' * ((4 - len(k) % 4) % 4)
    body = tcm + attr
    s.send(struct.pack('IHHII', 16 + len(body), mtype, 0x5, seq, 0) + body)
    data = s.recv(65536)
    err = struct.unpack('i', data[16:20])[0]
    print(('RTM_DELTFILTER' if mtype == 45 else 'RTM_DELQDISC') + ' errno', -err, flush=True)
req('bpf', 45, 1, 0xfffffff2, (1 << 16) | 0x0300, 1)
req('clsact', 37, 0xffff0000, 0xfffffff1, 0, 2)
`;
