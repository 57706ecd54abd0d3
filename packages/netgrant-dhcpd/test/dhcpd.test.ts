// netgrant-dhcpd against the real kernel and real DHCP clients: the
// responder runs as uid 65534 with no capability at all (port 67 opened by
// the namespace's ip_unprivileged_port_start), and answers only mktap
// --pool leases' guest MACs. Guests are network namespaces joined to their
// lease's tap by tools/bench's tap pump: busybox udhcpc (routed, pinned;
// bridged, pinned) and ISC dhclient (bridged, a second guest on the same
// bridge). Then: a guest that changes its MAC, malformed packets, MACs
// without a lease and a flood get no answer, and the responder's CPU stays
// bounded.
//
// @netgrant-test-modes: in-process
// One chaining mode: the responder is no chain link (it takes no program and
// is started directly), so both modes run the same code; mktap's chains are
// pool.test.ts's, in both modes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type ChildProcess } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, sh, tempDir, PYTHON } from '../../../tools/test/lib/harness.js';
import { confMaker } from '../../../tools/test/lib/launcher.js';
import { type GuestNs } from '../../../tools/test/lib/guest-ns.js';
import { dhcpKit, cpuTicks, killInNs } from '../../../tools/test/lib/dhcpd.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const conf = confMaker(dir);
const kit = dhcpKit(dir);

// The udhcpc script: what it was given, one line per event.
const script = join(dir, 'udhcpc.sh');
writeFileSync(script, '#!/bin/sh\necho "$1 ip=$ip mask=$mask router=$router mtu=$mtu dns=$dns staticroutes=$staticroutes lease=$lease serverid=$serverid" >> "$OUT"\n');
chmodSync(script, 0o755);
const dhclientScript = join(dir, 'dhclient.sh');
const dhclientOut = join(dir, 'dhclient.out');
// dhclient runs its script with an environment of its own: the output path is in the script.
writeFileSync(dhclientScript, `#!/bin/sh\necho "$reason ip=$new_ip_address mask=$new_subnet_mask router=$new_routers mtu=$new_interface_mtu dns=$new_domain_name_servers" >> ${dhclientOut}\n`);
chmodSync(dhclientScript, 0o755);

sh('sysctl -qw net.ipv4.ip_unprivileged_port_start=67');
sh('ip link add brd0 type bridge && ip addr add 10.90.0.1/24 dev brd0 && ip link set brd0 mtu 1400 && ip link set brd0 up');
const pool = conf('10.90.0.0/24\ndns 10.90.0.53 10.90.0.54\n');
const routedPool = conf('10.91.0.0/24\n');

const dhcpdLog = join(dir, 'dhcpd.log');
/** What the responder said (-v: one line per answer). */
const said = () => readFileSync(dhcpdLog, 'utf8');
/** The responder, as nobody with every capability set empty; resolves once it listens. */
const startDhcpd = () => kit.startDhcpd(['-v', '-c', pool], dhcpdLog);
const guest = (ns: string, mac: string, args: string[]) => kit.guest(ns, mac, args);
const udhcpc = (g: GuestNs, out: string) => g.sh(`OUT=${out} busybox udhcpc -i eth0 -f -q -n -t 3 -T 2 -s ${script} 2>&1`);
const field = (line: string, k: string) => new RegExp(`(?:^| )${k}=([^ ]*)`).exec(line)?.[1];

let dhcpd: ChildProcess;

test('the responder holds no capability and no raw socket', async () => {
  dhcpd = await startDhcpd();
  const status = readFileSync(`/proc/${dhcpd.pid}/status`, 'utf8');
  assert.match(status, /^Uid:\s+65534\s+65534\s+65534\s+65534$/m);
  for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) assert.match(status, new RegExp(`^${set}:\\s+0{16}$`, 'm'), set);
  assert.is(readFileSync('/proc/net/raw', 'utf8').split('\n').filter((l) => l.trim() && !l.includes('sl')).length, 0);
  assert.match(run(['ss', '-H', '-uln', 'sport = :67']).stdout, /0\.0\.0\.0:67/);
});

test('routed, pinned: busybox udhcpc gets the lease\'s address (/32), router, on-link route, MTU and a long lease; pings the host; a renewal is answered', async () => {
  const g = await guest('gr', '02:bb:00:00:00:01', ['-n', 'rtd0', '--routed', '--pool', routedPool, '--pin', '-m', '1450']);
  const [a4] = g.vars.GUESTADDRS!.split(',');
  const out = join(dir, 'gr.out');
  const r = udhcpc(g, out);
  assert.is(r.status, 0, r.stdout);
  const line = readFileSync(out, 'utf8').trim().split('\n').pop()!;
  assert.is(line.split(' ')[0], 'bound');
  assert.is(`${field(line, 'ip')}/32`, a4);
  assert.is(field(line, 'mask'), '32');
  assert.is(field(line, 'router'), '169.254.1.1');
  assert.is(field(line, 'serverid'), '169.254.1.1');
  assert.is(field(line, 'mtu'), '1450');
  assert.is(field(line, 'lease'), String(7 * 86400));
  assert.match(line, /staticroutes=169\.254\.1\.1\/32 0\.0\.0\.0 0\.0\.0\.0\/0 169\.254\.1\.1/);
  const ip = field(line, 'ip')!;
  const up = g.sh(`ip addr add ${ip}/32 dev eth0 && ip route add 169.254.1.1 dev eth0 && ip route add default via 169.254.1.1 && ping -c 1 -W 5 169.254.1.1`);
  assert.is(up.status, 0, up.stdout + up.stderr);
  // Renewal: a REQUEST from the bound address, unicast to the server, answered with an ACK to that address.
  const renew = g.sh(`${PYTHON} -c '
import socket, struct, sys
mac = bytes.fromhex("02bb00000001"); ip = socket.inet_aton("${ip}")
p = struct.pack("!BBBBIHH4s4s4s4s16s64s128sI", 1, 1, 6, 0, 0x1234, 0, 0, ip, bytes(4), bytes(4), bytes(4), mac + bytes(10), bytes(64), bytes(128), 0x63825363) + bytes([53, 1, 3, 255])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("${ip}", 68)); s.settimeout(5)
s.sendto(p, ("169.254.1.1", 67)); d, a = s.recvfrom(2048)
print(a[0], d[240:].find(bytes([53, 1, 5])) >= 0, socket.inet_ntoa(d[16:20]))
'`);
  assert.is(renew.stdout.trim(), `169.254.1.1 True ${ip}`, renew.stderr);
});

test('bridged, pinned: udhcpc and ISC dhclient on two guests of one bridge get two different addresses, the bridge as router, DNS and MTU; a guest that changes its MAC gets no answer and no traffic', async () => {
  const a = await guest('ga', '02:bb:00:00:00:02', ['-n', 'bda0', '-b', 'brd0', '--pool', pool, '--pin', '-m', '1400']);
  const b = await guest('gb', '02:bb:00:00:00:03', ['-n', 'bdb0', '-b', 'brd0', '--pool', pool, '--pin', '-m', '1400']);
  const outA = join(dir, 'ga.out');
  const r = udhcpc(a, outA);
  assert.is(r.status, 0, r.stdout);
  const la = readFileSync(outA, 'utf8').trim().split('\n').pop()!;
  assert.is(`${field(la, 'ip')}/24`, a.vars.GUESTADDRS);
  assert.is(field(la, 'mask'), '24');
  assert.is(field(la, 'router'), '10.90.0.1');
  assert.is(field(la, 'mtu'), '1400');
  assert.is(field(la, 'dns'), '10.90.0.53');
  assert.match(la, /dns=10\.90\.0\.53 10\.90\.0\.54 /);
  assert.match(la, /staticroutes=0\.0\.0\.0\/0 10\.90\.0\.1/);
  const ping = a.sh(`ip addr add ${field(la, 'ip')}/24 dev eth0 && ping -c 1 -W 5 10.90.0.1`);
  assert.is(ping.status, 0, ping.stdout);
  // The second client implementation, on the second guest.
  const outB = dhclientOut;
  const d = b.sh(`dhclient -1 -sf ${dhclientScript} -lf ${join(dir, 'gb.leases')} -pf ${join(dir, 'gb.pid')} eth0 2>&1`);
  assert.ok(await killInNs('gb', 'dhclient'), 'the dhclient daemon gone');
  const lb = readFileSync(outB, 'utf8').split('\n').find((l) => l.startsWith('BOUND'));
  assert.ok(lb, `dhclient: ${d.stdout} ${readFileSync(outB, 'utf8')}`);
  assert.is(`${field(lb!, 'ip')}/24`, b.vars.GUESTADDRS);
  assert.is(field(lb!, 'mask'), '255.255.255.0');
  assert.is(field(lb!, 'router'), '10.90.0.1');
  assert.is(field(lb!, 'mtu'), '1400');
  assert.is.not(a.vars.GUESTADDRS, b.vars.GUESTADDRS);
  // Guest A takes another MAC: the responder has no lease for it, and the pin drops its frames.
  const before = cpuTicks(dhcpd.pid!);
  const changed = a.sh(`ip link set eth0 address 02:bb:00:00:00:99 && OUT=${join(dir, 'gx.out')} busybox udhcpc -i eth0 -f -q -n -t 2 -T 1 -s ${script} 2>&1; ping -c 1 -W 2 10.90.0.1`);
  assert.is.not(changed.status, 0);
  assert.not.match(changed.stdout, /Lease of/);
  void before;
});

test('bad input: truncated, bad option lengths, overflowing options, oversized, relayed, no lease, and a flood: never an answer, never a crash, CPU bounded', async () => {
  // A client on the bridge with an address, its own UDP socket on port 68: no privilege needed to send any of this.
  kit.ownNs('gbad');
  sh('ip link add vbad0 type veth peer name vbad1 netns gbad && ip link set vbad0 master brd0 up');
  const bad = (cmd: string) => run(['ip', 'netns', 'exec', 'gbad', 'sh', '-c', cmd]);
  bad('ip link set lo up && ip link set vbad1 address 02:bb:00:00:00:42 up && ip addr add 10.90.0.250/24 dev vbad1 && ip route add default dev vbad1');
  const leased = '02bb00000002'; // guest A's MAC: still a lease (A's tap lives)
  const flood = bad(`${PYTHON} -c '
import socket, struct, time, os
def req(mac, opts, op=1, htype=1, hlen=6, giaddr=bytes(4), cookie=0x63825363):
    return struct.pack("!BBBBIHH4s4s4s4s16s64s128sI", op, htype, hlen, 0, 7, 0, 0x8000, bytes(4), bytes(4), bytes(4), giaddr, bytes.fromhex(mac) + bytes(10), bytes(64), bytes(128), cookie) + opts
L = "${leased}"
cases = [
  req(L, bytes([53, 1, 1, 255]))[:100],                       # truncated header
  req(L, bytes([53, 1, 1, 255]))[:238],                       # truncated cookie
  req(L, bytes([53, 5, 1, 255])),                             # option length past the end
  req(L, bytes([53, 1, 1, 12, 200, 0x41])),                   # overflowing option, no end
  req(L, bytes([53, 1, 1, 53, 1, 3, 255])),                   # two message types
  req(L, bytes([53, 2, 1, 1, 255])),                          # bad message type length
  req(L, bytes([53, 1, 1, 52, 1, 3, 255])),                   # option overload
  req(L, bytes([53, 1, 1])),                                  # no end option
  req(L, bytes([53, 1, 1, 255]) + bytes(1400)),               # oversized
  req(L, bytes([53, 1, 1, 255]), op=2),                       # a reply, not a request
  req(L, bytes([53, 1, 1, 255]), hlen=16),                    # not a 6-byte MAC
  req(L, bytes([53, 1, 1, 255]), giaddr=bytes([10, 90, 0, 9])), # relayed
  req(L, bytes([53, 1, 1, 255]), cookie=0),                   # no cookie
  req(L, bytes([255])),                                       # no message type
  req("02bb000000ff", bytes([53, 1, 1, 255])),                # no lease
  req("ffffffffffff", bytes([53, 1, 1, 255])),                # broadcast chaddr
  req("02bb00000003", bytes([53, 1, 8, 255])),                # INFORM: not answered
]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 68)); s.setblocking(False)
for c in cases: s.sendto(c, ("255.255.255.255", 67))
big = [bytes(os.urandom(n)) for n in (0, 1, 239, 240, 241, 300, 576, 1500, 4000)]
for b in big: s.sendto(b, ("255.255.255.255", 67))
t = time.time(); n = 0
while time.time() - t < 3:
    for c in cases: s.sendto(c, ("255.255.255.255", 67)); n += 1
time.sleep(1)
got = 0
try:
    while True: s.recv(4096); got += 1
except BlockingIOError: pass
print(n, got)
'`);
  const t0 = cpuTicks(dhcpd.pid!);
  void t0;
  assert.is(flood.status, 0, flood.stderr);
  const [sent, got] = flood.stdout.trim().split(' ').map(Number) as [number, number];
  assert.ok(sent > 1000, `sent ${sent}`);
  assert.is(got, 0, 'no answer to any of it');
  assert.match(readFileSync(`/proc/${dhcpd.pid}/status`, 'utf8'), /^State:\s+S/m, `the responder lives: ${readFileSync(`/proc/${dhcpd.pid}/status`, "utf8").split("\n")[2]} ${said()}`);
  // Still answering the lease it should.
  const a = { sh: (cmd: string) => run(['ip', 'netns', 'exec', 'gb', 'sh', '-c', cmd]) } as GuestNs;
  const r = a.sh(`OUT=${join(dir, 'gb2.out')} busybox udhcpc -i eth0 -f -q -n -t 5 -T 2 -s ${script} 2>&1`);
  assert.is(r.status, 0, r.stdout);
});

test('CPU: a 3 s flood of well-formed requests from a leased MAC and garbage costs the responder a bounded share of one core', async () => {
  const t0 = cpuTicks(dhcpd.pid!);
  const w0 = Date.now();
  const f = run(['ip', 'netns', 'exec', 'gbad', PYTHON, '-c', `
import socket, struct, time
def req(mac, opts): return struct.pack("!BBBBIHH4s4s4s4s16s64s128sI", 1, 1, 6, 0, 7, 0, 0x8000, bytes(4), bytes(4), bytes(4), bytes(4), bytes.fromhex(mac) + bytes(10), bytes(64), bytes(128), 0x63825363) + opts
cases = [req("02bb00000002", bytes([53, 1, 1, 255])), req("02bb000000ff", bytes([53, 1, 1, 255])), bytes(300)]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", 68))
t = time.time(); n = 0
while time.time() - t < 3:
    for c in cases: s.sendto(c, ("255.255.255.255", 67)); n += 1
print(n)
`]);
  const secs = (Date.now() - w0) / 1000;
  const cpu = (cpuTicks(dhcpd.pid!) - t0) / 100;
  const share = cpu / secs;
  console.log(`netgrant-dhcpd flood: ${f.stdout.trim()} datagrams in ${secs.toFixed(1)} s, responder CPU ${cpu.toFixed(2)} s (${(share * 100).toFixed(0)}% of a core)`);
  assert.ok(share < 0.9, `responder CPU share ${share}`);
  assert.is(dhcpd.exitCode, null);
});

test.after(async () => {
  await kit.cleanup();
  sh('ip link del brd0; ip link del vbad0 2>/dev/null; true');
  cleanup();
});

test.run();
