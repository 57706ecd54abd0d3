// netgrant-dhcpd -6 against the real kernel and a real DHCPv6 client: the
// responder runs as uid 65534 with no capability at all (port 547 opened
// by the namespace's ip_unprivileged_port_start), and answers only the
// link-local address of an mktap --pool lease's guest MAC. Guests are
// network namespaces behind tools/bench's tap pump (lib/dhcpd.ts): ISC
// dhclient -6 gets exactly its lease's address (routed and bridged, both
// pinned) and confirms it on a restart; RENEW, REBIND, Rapid Commit,
// INFORMATION-REQUEST and CONFIRM are answered as RFC 8415 says; a source
// without a lease (whatever DUID it sends), malformed messages and a flood
// get no answer, and the responder's CPU stays bounded. (Debian's busybox
// has no udhcpc6.)
//
// @netgrant-test-modes: in-process
// One chaining mode, as dhcpd.test.ts: the responder is no chain link.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type ChildProcess } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { run, sh, tempDir, ROOT, PYTHON, NOBODY } from '../../../tools/test/lib/harness.js';
import { confMaker } from '../../../tools/test/lib/launcher.js';
import { type GuestNs } from '../../../tools/test/lib/guest-ns.js';
import { dhcpKit, cpuTicks, killInNs } from '../../../tools/test/lib/dhcpd.js';
import { lla, mac } from '../../../tools/test/lib/pin-frames.js';
import { parseIp } from '@netgrant/core';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const conf = confMaker(dir);
const kit = dhcpKit(dir);
const PROBE = join(ROOT, 'tools/test/lib/dhcp6-probe.py');

const BRIDGE_MAC = '02:00:00:00:96:01';
sh('sysctl -qw net.ipv4.ip_unprivileged_port_start=67');
sh(`ip link add brs6 type bridge && ip link set brs6 address ${BRIDGE_MAC} && sysctl -qw net.ipv6.conf.brs6.accept_dad=0 && ip addr add fd96::1/64 dev brs6 nodad && ip link set brs6 up`);
const pool = conf('fd96::/64\ndns fd96::53 10.96.0.53\n');
const routedPool = conf('10.97.0.0/24\nfd97::/64\n');
/** The server id on the bridge: DUID-LL of its MAC. */
const SERVER_ID = Buffer.concat([Buffer.from([0, 3, 0, 1]), mac(BRIDGE_MAC)]);

const dhcpdLog = join(dir, 'dhcpd6.log');
const said = () => readFileSync(dhcpdLog, 'utf8');
/** A guest: DAD off on eth0 (down and up again: mktap brought it up), so its link-local address is usable at once (dhclient binds to it). */
const guest = (ns: string, m: string, args: string[]) =>
  kit.guest(ns, m, args, 'sysctl -qw net.ipv6.conf.eth0.accept_dad=0 && ip link set lo up && ip link set eth0 down && ip link set eth0 up');

// dhclient runs its script with an environment of its own: the output path is in the script.
const dhclientOut = join(dir, 'dhclient6.out');
const dhclientScript = join(dir, 'dhclient6.sh');
writeFileSync(dhclientScript, `#!/bin/sh\necho "$reason ip=$new_ip6_address plen=$new_ip6_prefixlen dns=$new_dhcp6_name_servers pref=$new_preferred_life life=$new_max_life" >> ${dhclientOut}\n`);
chmodSync(dhclientScript, 0o755);
/** dhclient -6 once in g, namespace ns (lease file per guest, kept for a restart); the script's lines for this run. */
async function dhclient6(g: GuestNs, ns: string): Promise<string[]> {
  const before = existsSync(dhclientOut) ? readFileSync(dhclientOut, 'utf8').length : 0;
  const r = g.sh(`timeout 20 dhclient -6 -v -1 -sf ${dhclientScript} -lf ${join(dir, `${ns}.leases`)} -pf ${join(dir, `${ns}.pid`)} eth0 2>&1`);
  assert.ok(await killInNs(ns, 'dhclient'), 'the dhclient daemon gone');
  const out = existsSync(dhclientOut) ? readFileSync(dhclientOut, 'utf8').slice(before) : '';
  const lines = out.split('\n').filter(Boolean);
  assert.ok(lines.some((l) => /^(BOUND6|REBOOT6) /.test(l)), `dhclient -6: ${r.stdout}\n${out}\nresponder: ${said()}`);
  return lines;
}
const field = (line: string, k: string) => new RegExp(`(?:^| )${k}=([^ ]*)`).exec(line)?.[1];

// DHCPv6 messages for the probe.
const opt = (code: number, ...parts: Buffer[]) => {
  const v = Buffer.concat(parts);
  const h = Buffer.alloc(4);
  h.writeUInt16BE(code, 0);
  h.writeUInt16BE(v.length, 2);
  return Buffer.concat([h, v]);
};
const u32s = (...ns: number[]) => Buffer.concat(ns.map((n) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; }));
const msg = (type: number, xid: number, ...opts: Buffer[]) => Buffer.concat([Buffer.from([type, (xid >> 16) & 0xff, (xid >> 8) & 0xff, xid & 0xff]), ...opts]);
const ip6 = (a: string) => parseIp(a)!.bytes;
const duid = (m: string) => opt(1, Buffer.from([0, 3, 0, 1]), mac(m));
const iaNa = (iaid: number, ...addrs: Buffer[]) => opt(3, u32s(iaid, 0, 0), ...addrs.map((a) => opt(5, a, u32s(0, 0))));
const ELAPSED = opt(8, Buffer.alloc(2));

interface Reply { type: number; xid: number; opts: Map<number, Buffer[]> }
function parseReply(hex: string): Reply {
  const p = Buffer.from(hex, 'hex');
  const opts = new Map<number, Buffer[]>();
  for (let off = 4; off + 4 <= p.length; ) {
    const code = p.readUInt16BE(off);
    const len = p.readUInt16BE(off + 2);
    opts.set(code, [...(opts.get(code) ?? []), p.subarray(off + 4, off + 4 + len)]);
    off += 4 + len;
  }
  return { type: p[0]!, xid: p.readUIntBE(1, 3), opts };
}
/** An IA_NA's addresses with (preferred, valid), and its status code if any. */
function iaOf(v: Buffer): { iaid: number; addrs: [string, number, number][]; status: number | undefined } {
  const addrs: [string, number, number][] = [];
  let status: number | undefined;
  for (let off = 12; off + 4 <= v.length; ) {
    const code = v.readUInt16BE(off);
    const len = v.readUInt16BE(off + 2);
    const b = v.subarray(off + 4, off + 4 + len);
    if (code === 5) addrs.push([b.subarray(0, 16).toString('hex'), b.readUInt32BE(16), b.readUInt32BE(20)]);
    if (code === 13) status = b.readUInt16BE(0);
    off += 4 + len;
  }
  return { iaid: v.readUInt32BE(0), addrs, status };
}
/** Send msgs from src on g's eth0; the replies within wait seconds (or as soon as `expect` have come). */
function probe(g: GuestNs | ((cmd: string) => ReturnType<typeof run>), src: string, msgs: Buffer[], wait: number, expect?: number): Reply[] {
  const shell = typeof g === 'function' ? g : g.sh;
  const r = shell(`echo '${msgs.map((m) => m.toString('hex')).join('\n')}' | ${PYTHON} ${PROBE} eth0 ${src} ${wait}${expect ? ` --expect ${expect}` : ''}`);
  assert.is(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean).map(parseReply);
}

let dhcpd: ChildProcess;

test('the responder holds no capability and no raw socket, and listens on [::]:547', async () => {
  dhcpd = await kit.startDhcpd(['-6', '-v', '-c', pool], dhcpdLog);
  const status = readFileSync(`/proc/${dhcpd.pid}/status`, 'utf8');
  assert.match(status, /^Uid:\s+65534\s+65534\s+65534\s+65534$/m);
  for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) assert.match(status, new RegExp(`^${set}:\\s+0{16}$`, 'm'), set);
  for (const f of ['raw', 'raw6', 'packet']) assert.is(readFileSync(`/proc/net/${f}`, 'utf8').trim().split('\n').length, 1, f);
  assert.match(run(['ss', '-H', '-6uln', 'sport = :547']).stdout, /\[::\]:547|\*:547/);
});

test('routed, pinned: dhclient -6 gets exactly the lease\'s IPv6 address with long lifetimes; the guest routes through fe80::1 to the host', async () => {
  const G = '02:bb:00:00:06:01';
  const g = await guest('gr6', G, ['-n', 'rt6', '--routed', '--pool', routedPool, '--pin']);
  const a6 = g.vars.GUESTADDRS!.split(',')[1]!;
  assert.match(a6, /^fd97::[0-9a-f:]+\/128$/);
  const lines = await dhclient6(g, 'gr6');
  const bound = lines.find((l) => l.startsWith('BOUND6'));
  assert.ok(bound, lines.join('\n'));
  assert.is(`${field(bound!, 'ip')}/128`, a6);
  assert.is(field(bound!, 'plen'), '128', 'no prefix from DHCPv6: the address alone');
  assert.is(field(bound!, 'pref'), String(7 * 86400));
  assert.is(field(bound!, 'life'), String(7 * 86400));
  assert.match(said(), new RegExp(`REPLY to REQUEST 1 address\\(es\\) to ${lla(mac(G))} on rt6`));
  // No router advertisement: the guest's default route is the routed tap's link-local gateway (docs/recipes.md).
  const up = g.sh(`ip -6 addr add ${a6} dev eth0 nodad && ip -6 route add default via fe80::1 dev eth0 && ping -6 -c 1 -W 5 fd96::1`);
  assert.is(up.status, 0, up.stdout + up.stderr);
});

let ga: GuestNs;
const GA = '02:bb:00:00:06:02';

test('bridged, pinned: dhclient -6 gets exactly the lease\'s address and the pool\'s IPv6 DNS; a restart confirms it (CONFIRM)', async () => {
  ga = await guest('ga6', GA, ['-n', 'bda6', '-b', 'brs6', '--pool', pool, '--pin']);
  const a6 = ga.vars.GUESTADDRS!;
  assert.match(a6, /^fd96::[0-9a-f:]+\/64$/);
  const bound = (await dhclient6(ga, 'ga6')).find((l) => l.startsWith('BOUND6'));
  assert.ok(bound);
  assert.is(field(bound!, 'ip'), a6.split('/')[0]);
  assert.is(field(bound!, 'dns'), 'fd96::53');
  // dhclient -6 with its lease file starts by confirming the address.
  const again = await dhclient6(ga, 'ga6');
  assert.ok(again.some((l) => /^(REBOOT6|BOUND6) /.test(l) && field(l, 'ip') === a6.split('/')[0]), again.join('\n'));
  assert.match(said(), /REPLY to CONFIRM/);
});

test('RFC 8415 exchanges from the guest\'s link-local address: RENEW, REBIND, Rapid Commit, a second IA, INFORMATION-REQUEST, CONFIRM of a foreign address', () => {
  const src = lla(mac(GA));
  const mine = ip6(ga.vars.GUESTADDRS!.split('/')[0]!);
  const foreign = ip6('fd96::dead');
  const cid = duid(GA);
  const sid = opt(2, SERVER_ID);
  const replies = probe(ga, src, [
    msg(5, 0x101, cid, sid, ELAPSED, iaNa(7, mine, foreign)), // RENEW
    msg(6, 0x102, cid, ELAPSED, iaNa(7, mine)), // REBIND
    msg(1, 0x103, cid, ELAPSED, opt(14), iaNa(7), iaNa(8)), // SOLICIT, Rapid Commit, two IAs
    msg(11, 0x104, cid, ELAPSED), // INFORMATION-REQUEST
    msg(4, 0x105, cid, ELAPSED, iaNa(7, foreign)), // CONFIRM of an address not the lease's
    msg(5, 0x106, cid, opt(2, Buffer.from([0, 3, 0, 1, 2, 0, 0, 0, 0, 9])), iaNa(7, mine)), // RENEW to another server
    msg(11, 0x107, cid), // the same again, last: once it is answered, the RENEW to another server has had its chance
  ], 3, 6);
  const by = new Map(replies.map((r) => [r.xid, r]));
  assert.equal([...by.keys()].sort(), [0x101, 0x102, 0x103, 0x104, 0x105, 0x107], 'all but the RENEW to another server');
  const renew = by.get(0x101)!;
  assert.is(renew.type, 7);
  assert.ok(renew.opts.get(1)![0]!.equals(cid.subarray(4)), 'client id echoed');
  assert.ok(renew.opts.get(2)![0]!.equals(SERVER_ID), 'server id: DUID-LL of the bridge');
  const ia = iaOf(renew.opts.get(3)![0]!);
  assert.equal(ia.addrs, [[mine.toString('hex'), 7 * 86400, 7 * 86400], [foreign.toString('hex'), 0, 0]], 'the lease\'s address, the foreign one with lifetimes 0');
  assert.equal(iaOf(by.get(0x102)!.opts.get(3)![0]!).addrs, [[mine.toString('hex'), 7 * 86400, 7 * 86400]]);
  const rc = by.get(0x103)!;
  assert.is(rc.type, 7, 'Rapid Commit: REPLY, not ADVERTISE');
  assert.ok(rc.opts.has(14));
  const [first, second] = rc.opts.get(3)!.map(iaOf);
  assert.is(first!.addrs.length, 1);
  assert.equal(second!.addrs, []);
  assert.is(second!.status, 2, 'NoAddrsAvail for the second IA');
  const info = by.get(0x104)!;
  assert.is(info.type, 7);
  assert.not.ok(info.opts.has(3));
  assert.is(info.opts.get(23)![0]!.toString('hex'), ip6('fd96::53').toString('hex'));
  assert.is(by.get(0x105)!.opts.get(13)![0]!.readUInt16BE(0), 4, 'NotOnLink');
});

test('no lease: a source without a lease gets nothing, whatever DUID it sends (even DUID-LL of a leased MAC)', () => {
  kit.ownNs('gnl6');
  sh('ip link add vnl0 type veth peer name eth0 netns gnl6 && ip link set vnl0 master brs6 up');
  const nl = (cmd: string) => run(['ip', 'netns', 'exec', 'gnl6', 'sh', '-c', cmd]);
  const own = '02:cc:00:00:06:42';
  assert.is(nl(`sysctl -qw net.ipv6.conf.eth0.accept_dad=0 && ip link set eth0 address ${own} && ip link set lo up && ip link set eth0 up`).status, 0);
  const replies = probe(nl, lla(mac(own)), [msg(1, 0x201, duid(own), ELAPSED, iaNa(1)), msg(1, 0x202, duid(GA), ELAPSED, iaNa(1)), msg(11, 0x203, duid(GA))], 1);
  assert.is(replies.length, 0);
});

test('bad input from the leased guest\'s own address: malformed, oversized, wrong types, relay messages, another server\'s id: never an answer; then a good SOLICIT is', () => {
  const src = lla(mac(GA));
  const cid = duid(GA);
  const sid = opt(2, SERVER_ID);
  const solicit = (xid: number, ...o: Buffer[]) => msg(1, xid, cid, ELAPSED, iaNa(1), ...o);
  const bad = [
    solicit(0x301).subarray(0, 3), // shorter than a header
    solicit(0x302).subarray(0, 10), // an option header cut
    Buffer.concat([solicit(0x303), Buffer.from([0, 8, 0, 9, 0])]), // an option past the end
    msg(1, 0x304, cid, cid, iaNa(1)), // two client ids
    msg(1, 0x305, opt(1, Buffer.from([0, 3])), iaNa(1)), // a DUID too short
    msg(1, 0x306, opt(1, Buffer.alloc(131, 1)), iaNa(1)), // a DUID too long
    msg(1, 0x307, iaNa(1)), // SOLICIT without a client id
    solicit(0x308, sid), // SOLICIT with a server id
    msg(3, 0x309, cid, iaNa(1)), // REQUEST without a server id
    msg(1, 0x30a, cid, opt(3, u32s(1, 0, 0), opt(5, Buffer.alloc(10)))), // IAADDR too short inside IA_NA
    msg(1, 0x30b, cid, opt(3, Buffer.alloc(8))), // IA_NA too short
    msg(1, 0x30c, cid, iaNa(1), iaNa(1)), // the same IAID twice
    msg(11, 0x30d, cid, iaNa(1)), // INFORMATION-REQUEST with an IA
    solicit(0x30e, opt(14, Buffer.from([1]))), // Rapid Commit with a value
    solicit(0x30f, Buffer.alloc(1300)), // oversized
    msg(2, 0x310, cid, sid, iaNa(1)), // ADVERTISE (a server's)
    msg(7, 0x311, cid, sid), // REPLY (a server's)
    msg(8, 0x312, cid, sid, iaNa(1)), // RELEASE: not answered
    msg(9, 0x313, cid, sid, iaNa(1)), // DECLINE: not answered
    Buffer.concat([Buffer.from([12, 0, 0x03, 0x14]), Buffer.alloc(32), opt(9, solicit(0x314))]), // RELAY-FORW
    solicit(0x315, opt(9, solicit(0x316))), // a relay message inside a client's
    msg(3, 0x317, cid, opt(2, Buffer.from([0, 3, 0, 1, 2, 0, 0, 0, 0, 9])), iaNa(1)), // REQUEST to another server
    msg(1, 0x318, cid, ELAPSED), // SOLICIT without IA_NA
    msg(4, 0x319, cid, ELAPSED), // CONFIRM without addresses
    msg(1, 0x31a, cid, opt(8, Buffer.alloc(3)), iaNa(1)), // elapsed time of 3 bytes
  ];
  // Answered in order: once the last (good) one is, the bad ones have had their chance.
  const replies = probe(ga, src, [...bad, solicit(0x3ff)], 3, 1);
  assert.equal(replies.map((r) => r.xid.toString(16)), ['3ff'], 'only the good SOLICIT is answered');
  assert.is(replies[0]!.type, 2, 'ADVERTISE');
  assert.is(replies[0]!.opts.get(7)![0]![0], 255, 'preference 255');
  assert.is(dhcpd.exitCode, null);
});

test('CPU: a 2 s flood from the leased guest (good SOLICITs and garbage) costs the responder a bounded share of one core, answers stay rate-limited', () => {
  const src = lla(mac(GA));
  const answersBefore = said().split('\n').filter((l) => l.includes(' to SOLICIT ')).length;
  const t0 = cpuTicks(dhcpd.pid!);
  const w0 = Date.now();
  const msgs = [msg(1, 0x401, duid(GA), ELAPSED, iaNa(1)), Buffer.alloc(60, 0xff), msg(1, 0x402, opt(9, Buffer.alloc(8))), Buffer.from([12, 1, 2])];
  const r = ga.sh(`echo '${msgs.map((m) => m.toString('hex')).join('\n')}' | ${PYTHON} ${PROBE} eth0 ${src} 1.2 --flood 2`);
  const secs = (Date.now() - w0) / 1000;
  const cpu = (cpuTicks(dhcpd.pid!) - t0) / 100;
  assert.is(r.status, 0, r.stderr);
  const sent = Number(/sent (\d+)/.exec(r.stdout)![1]);
  const answers = said().split('\n').filter((l) => l.includes(' to SOLICIT ')).length - answersBefore;
  console.log(`netgrant-dhcpd -6 flood: ${sent} datagrams in ${secs.toFixed(1)} s, ${answers} answers, responder CPU ${cpu.toFixed(2)} s (${((cpu / secs) * 100).toFixed(0)}% of a core)`);
  assert.ok(sent > 1000, `sent ${sent}`);
  assert.ok(answers <= 10 * Math.ceil(secs + 1), `answers ${answers}`);
  assert.ok(cpu / secs < 0.9, `responder CPU share ${cpu / secs}`);
  assert.is(dhcpd.exitCode, null);
  const after = probe(ga, src, [msg(1, 0x4ff, duid(GA), ELAPSED, iaNa(1))], 3, 1);
  assert.equal(after.map((x) => x.xid), [0x4ff], 'still answering its lease');
});

test('usage: a bad -D, -D without -6; port 547 not ours to bind: exit 111', () => {
  for (const args of [['-6', '-D', 'zz00'], ['-6', '-D', '0001'], ['-6', '-D', '00'.repeat(131)], ['-D', '000300010200000000ff']]) {
    const r = run(['netgrant-dhcpd', ...args]);
    assert.is(r.status, 100, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^netgrant-dhcpd: fatal: .*-D/);
  }
  // A namespace of its own with the default ip_unprivileged_port_start (1024), and no capability.
  const r = run(['unshare', '-n', 'setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', 'netgrant-dhcpd', '-6']);
  assert.is(r.status, 111, r.stderr);
  assert.match(r.stderr, /^netgrant-dhcpd: fatal: bind UDP\/IPv6 port 547: .*EACCES/);
});

test.after(async () => {
  await kit.cleanup();
  sh('ip link del brs6; ip link del vnl0 2>/dev/null; true');
  cleanup();
});

test.run();
