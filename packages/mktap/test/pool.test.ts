// mktap --pool and --routed against the real kernel: addresses drawn from
// the administrator's pool under the lease lock, recorded in the tap's
// lease record (the kernel's, so a crash frees them), never given twice
// (concurrent greedy clients), pinned with --pin; routed taps with Calico's
// host side, traffic through a guest namespace joined by tools/bench's tap
// pump, and everything gone with the tap.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, sh, tempDir, failsWith, until, holdChain, NOBODY, PYTHON, ROOT } from '../../../tools/test/lib/harness.js';
import { confMaker } from '../../../tools/test/lib/launcher.js';
import { guestNs, buildPump } from '../../../tools/test/lib/guest-ns.js';
import { formatRecord, parseRecord } from '@netgrant/lease';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const conf = confMaker(dir);
const procs: ChildProcess[] = [];
const alias = (name: string) => (JSON.parse(run(['ip', '-j', 'link', 'show', name]).stdout) as { ifalias?: string }[])[0]!.ifalias;
const exists = (name: string) => run(['ip', 'link', 'show', name]).status === 0;
const tuns = () => run(['ip', '-o', 'link', 'show', 'type', 'tun']).stdout.trim();
const vars = (out: string) => Object.fromEntries(out.split(' ').map((kv) => kv.split('=') as [string, string]));
const SHOW = 'echo "TAPNAME=$TAPNAME GUESTADDRS=$GUESTADDRS GUESTGATEWAYS=$GUESTGATEWAYS GUESTMAC=$GUESTMAC"';
const hold = async (args: string[], env: Record<string, string> = {}, then = 'exec sleep 120') => {
  const h = await holdChain(['mktap', ...args], `${SHOW}; ${then}`, env);
  procs.push(h.proc);
  return { proc: h.proc, v: vars(h.out) };
};

sh('ip link add brp0 type bridge && ip addr add 10.80.0.1/24 dev brp0 && ip addr add fd80::1/64 dev brp0 nodad && ip link set brp0 up');
sh('ip link add brp1 type bridge && ip addr add 10.81.0.1/28 dev brp1 && ip link set brp1 up');

test('bridged: one address per subnet, never the bridge\'s, recorded with the lease; GUESTADDRS, GUESTGATEWAYS, GUESTMAC exported', async () => {
  const c = conf('10.80.0.0/24\nfd80::/64\ndns 10.80.0.53\n');
  const { proc, v } = await hold(['-b', 'brp0', '--pool', c, '--guest-mac', '02:aa:00:00:00:01'], { PEERUID: '5000' });
  const [a4, a6] = v.GUESTADDRS!.split(',');
  assert.match(a4!, /^10\.80\.0\.([2-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-4])\/24$/);
  assert.match(a6!, /^fd80::[0-9a-f:]+\/64$/);
  assert.is.not(a6, 'fd80::1/64');
  assert.is(v.GUESTGATEWAYS, '10.80.0.1,fd80::1');
  assert.is(v.GUESTMAC, '02:aa:00:00:00:01');
  assert.match(alias(v.TAPNAME!)!, new RegExp(`^netgrant1 lease by=mktap uid=5000 owner=- group=- mac=fe(:[0-9a-f]{2}){5} guest=02:aa:00:00:00:01 addrs=${a4},${a6} gw=10.80.0.1,fd80::1$`));
  // The fd holder cannot rewrite the record (the kernel wants CAP_NET_ADMIN): as nobody, with the fd.
  const w = run(['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'ip', 'link', 'set', 'dev', v.TAPNAME!, 'alias', 'netgrant1 lease by=mktap uid=5000']);
  assert.match(w.stderr, /Operation not permitted/);
  assert.match(alias(v.TAPNAME!)!, /addrs=/);
  proc.kill('SIGKILL');
  assert.ok(await until(() => !exists(v.TAPNAME!)));
  // Without --guest-mac a pool's lease gets a random guest MAC (the responder needs one).
  const r = run(['mktap', '-b', 'brp0', '--pool', c, 'sh', '-c', SHOW]);
  assert.is(r.status, 0, r.stderr);
  assert.match(vars(r.stdout.trim()).GUESTMAC!, /^02(:[0-9a-f]{2}){5}$/);
});

test('a full pool is refused and leaves nothing; a crashed or hostile holder frees its address at the next allocation', async () => {
  // A /30 has two hosts; the bridge has neither, "gateway" names one: one address left.
  const c = conf('10.82.0.0/30 gateway 10.82.0.1\n');
  sh('ip link add brp2 type bridge && ip link set brp2 up');
  const first = await hold(['-b', 'brp2', '--pool', c]);
  assert.is(first.v.GUESTADDRS, '10.82.0.2/30');
  const before = tuns();
  const full = run(['mktap', '-b', 'brp2', '--pool', c, 'true']);
  assert.is(failsWith(full, 'mktap', 111, /allocate an address in 10\.82\.0\.0\/30: .*no free address in the subnet/), null, full.stderr);
  assert.is(tuns(), before, 'no device left by the refusal');
  // SIGKILL: the kernel deletes the tap, and its record with it.
  first.proc.kill('SIGKILL');
  assert.ok(await until(() => !exists(first.v.TAPNAME!)));
  // A hostile holder (nobody, no capability) makes the tap persistent so it outlives the fd: the lease is stale, culled before the next draw.
  const hostile = await hold(['-n', 'hostile0', '-b', 'brp2', '--pool', c, '-o', String(NOBODY)], {}, `exec setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups ${PYTHON} ${join(ROOT, 'tools/test/lib/hostile-tap.py')} 3 persist report`);
  assert.is(hostile.v.GUESTADDRS, '10.82.0.2/30');
  assert.ok(await until(() => hostile.proc.exitCode !== null));
  assert.ok(exists(hostile.v.TAPNAME!), 'the persistent tap outlived its holder');
  const next = await hold(['-b', 'brp2', '--pool', c]);
  assert.is(next.v.GUESTADDRS, '10.82.0.2/30', 'the stale lease\'s address was freed');
  assert.not.ok(exists(hostile.v.TAPNAME!), 'and its tap deleted');
  next.proc.kill('SIGKILL');
  await until(() => !exists(next.v.TAPNAME!));
  sh('ip link del brp2');
});

test('uniqueness: 16 greedy clients at once on 13 free addresses: 13 leases, 13 different addresses, 3 refused', async () => {
  // 10.81.0.0/28: 14 hosts, the bridge holds .1.
  const c = conf('10.81.0.0/28\n');
  const results = await Promise.allSettled(Array.from({ length: 16 }, (_, i) => hold(['-b', 'brp1', '--pool', c, '--owner-from-peer'], { PEERUID: String(6000 + i), PEERGID: String(6000 + i) })));
  const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const lost = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
  assert.is(won.length, 13);
  for (const l of lost) assert.match(l, /no free address in the subnet/);
  const addrs = won.map((w) => w.v.GUESTADDRS);
  assert.is(new Set(addrs).size, 13);
  assert.not.ok(addrs.includes('10.81.0.1/28'));
  for (const w of won) w.proc.kill('SIGKILL');
  assert.ok(await until(() => tuns() === '', 10000));
});

test('--routed: no bridge; the gateway on the host side, proxy ARP/NDP, a host route per address; a guest behind the tap pump gets through, pinned to its pool address; all gone with the tap', async () => {
  const c = conf('10.83.0.0/24\nfd83::/64\n');
  const GUEST = '02:aa:00:00:00:83';
  // The pool's tap (routed, pinned), the guest's end in namespace gst, the pump between them.
  const guest = await guestNs(buildPump(dir), 'gst', GUEST, ['-n', 'rtp0', '--routed', '--pool', c, '--pin']);
  const chain = guest.proc;
  procs.push(chain);
  const v = guest.vars;
  const tap = 'rtp0'; // TAPNAME is the guest end's by now
  const [a4, a6] = v.GUESTADDRS!.split(',') as [string, string];
  assert.match(a4, /^10\.83\.0\.[0-9]+\/32$/);
  assert.match(a6, /^fd83::[0-9a-f:]+\/128$/);
  assert.is(v.GUESTGATEWAYS, '169.254.1.1,fe80::1');
  const g4 = a4.split('/')[0]!;
  const g6 = a6.split('/')[0]!;
  // The host side.
  assert.is(run(['ip', '-j', 'link', 'show', tap]).stdout.includes('"master"'), false, 'no bridge');
  assert.match(run(['ip', '-4', 'addr', 'show', 'dev', tap]).stdout, /inet 169\.254\.1\.1\/32/);
  assert.match(run(['ip', '-4', 'route', 'show', 'dev', tap]).stdout, new RegExp(`^${g4.replace(/\./g, '\\.')} `, 'm'));
  assert.match(run(['ip', '-6', 'route', 'show', 'dev', tap]).stdout, new RegExp(`^${g6} `, 'm'));
  assert.match(run(['ip', '-6', 'neigh', 'show', 'proxy', 'dev', tap]).stdout, /^fe80::1 /m);
  for (const [k, want] of [['ipv4/conf', 'proxy_arp'], ['ipv4/conf', 'forwarding'], ['ipv4/conf', 'rp_filter'], ['ipv6/conf', 'proxy_ndp']] as const) {
    assert.is(readFileSync(`/proc/sys/net/${k}/${tap}/${want}`, 'utf8').trim(), '1', want);
  }
  // The guest: its pool address, the gateway on-link, as a DHCP client's routes would set them.
  const g = guest.sh;
  const set = g(`ip link set lo up && ip link set eth0 up && ip addr add ${a4} dev eth0 && ip -6 addr add ${a6} dev eth0 nodad && ip route add 169.254.1.1 dev eth0 && ip route add default via 169.254.1.1 && ip -6 route add default via fe80::1 dev eth0`);
  assert.is(set.status, 0, set.stderr);
  const ping4 = g('ping -c 1 -W 5 169.254.1.1');
  assert.is(ping4.status, 0, ping4.stdout + ping4.stderr);
  const back = run(['ping', '-c', '1', '-W', '5', g4]);
  assert.is(back.status, 0, `host to guest: ${back.stdout}`);
  // Routed onward by the host: an address of the host's on another interface.
  const ping6 = g('ping -6 -c 1 -W 5 fd80::1');
  assert.is(ping6.status, 0, ping6.stdout + ping6.stderr);
  // Pinned to the pool's address: another source address gets nowhere.
  assert.is(g(`ip addr add 10.83.0.250/32 dev eth0 && ping -c 1 -W 2 -I 10.83.0.250 169.254.1.1`).status, 1);
  chain.kill('SIGKILL');
  assert.ok(await until(() => !exists(tap)));
  assert.is(run(['ip', '-4', 'route', 'show', g4]).stdout, '');
  assert.is(run(['ip', '-6', 'route', 'show', g6]).stdout, '');
  assert.is(run(['ip', 'neigh', 'show', 'proxy']).stdout, '');
  assert.is(run(['ip', '-4', 'addr', 'show', 'to', '169.254.1.1']).stdout, '');
  sh('ip netns del gst');
});

const bad: [string, string[], Record<string, string>, number, RegExp][] = [
  ['--routed without --pool', ['--routed'], {}, 100, /--routed needs --pool/],
  ['--routed with a bridge', ['--routed', '--pool', '/nonexistent', '-b', 'brp0'], {}, 100, /--routed attaches no bridge/],
  ['--pool with neither a bridge nor --routed', ['--pool', '/nonexistent'], {}, 100, /--pool needs a bridge/],
  ['--pool on a tun', ['-t', 'tun', '--pool', '/nonexistent', '--routed'], {}, 100, /need a tap/],
  ['a missing pool file', ['-b', 'brp0', '--pool', join(dir, 'absent')], {}, 111, /ENOENT/],
];
for (const [name, args, env, code, re] of bad) {
  test(`bad input: ${name} (and no device left)`, () => {
    const r = run(['mktap', ...args, 'true'], { env });
    assert.is(failsWith(r, 'mktap', code, re), null, r.stderr);
    assert.is(tuns(), '');
  });
}

test('bad pool files: syntax, a limit, a link-local subnet, a writable file, no gateway on the bridge, a bridge that is not one', () => {
  sh('ip link add brp3 type bridge && ip link set brp3 up && ip link add vp0 type veth peer name vp1');
  const cases: [string, number, RegExp, string?][] = [
    [conf('10.84.0.1/24\n'), 100, /c\d+\.conf:1: not a subnet/],
    [conf('limit 3\n10.84.0.0/24\n'), 100, /a pool has no "limit"/],
    [conf('10.84.0.0/24\ndns nope\n'), 100, /c\d+\.conf:2: dns takes/],
    [conf('10.84.0.0/24\nfe80::/64\n'), 100, /fe80::\/64: link-local addresses are not handed out/],
    [conf('10.84.0.0/24\n', 0o666), 100, /writable by/],
    [conf('10.84.0.0/24\n', 0o644, NOBODY), 100, /owned by uid 65534/],
    [conf('10.84.0.0/24\n'), 100, /10\.84\.0\.0\/24: no gateway \(no address of brp3 in it/, 'brp3'],
    [conf('10.84.0.0/24\n'), 100, /-b: vp0 is not a bridge/, 'vp0'],
  ];
  for (const [c, code, re, br] of cases) {
    const r = run(['mktap', '-b', br ?? 'brp0', '--pool', c, 'true']);
    assert.is(failsWith(r, 'mktap', code, re), null, `${c}: ${r.stderr}`);
  }
  assert.is(tuns(), '');
  sh('ip link del brp3; ip link del vp0');
});

test('--pool into a namespace the peer owns is refused: its records are the peer\'s to write', async () => {
  const holder = spawn('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'unshare', '--user', '--net', 'sleep', '30'], { stdio: 'ignore' });
  procs.push(holder);
  await until(() => run(['readlink', `/proc/${holder.pid}/ns/user`]).stdout !== run(['readlink', '/proc/self/ns/user']).stdout);
  const ns = openSync(`/proc/${holder.pid}/ns/net`, 'r');
  const r = run(['mktap', '-N', '5', '--owner-from-peer', '--routed', '--pool', conf('10.85.0.0/24\n'), 'true'], { env: { PEERUID: String(NOBODY), PEERGID: String(NOBODY) }, stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', ns] });
  assert.is(failsWith(r, 'mktap', 100, /--pool: the target namespace is owned by a user namespace of its own/), null, r.stderr);
  assert.is(run(['nsenter', `--net=/proc/${holder.pid}/ns/net`, 'ip', '-o', 'link', 'show', 'type', 'tun']).stdout, '');
  holder.kill('SIGKILL');
});

test('records: guest= and gw= round-trip; malformed ones are not records', () => {
  const r = { kind: 'lease' as const, by: 'mktap', uid: 7, owner: null, group: null, mac: 'fe:00:00:00:00:01', guest: '02:00:00:00:00:01', addrs: ['10.0.0.2/24', 'fd00::2/64'], gw: ['10.0.0.1', 'fd00::1'] };
  assert.equal(parseRecord(formatRecord(r)), r);
  for (const bad of ['guest=02:00:00:00:00', 'guest=02:00:00:00:00:01 guest=02:00:00:00:00:02', 'gw=10.0.0.1,nope', 'gw=']) assert.is(parseRecord(`netgrant1 lease by=mktap uid=7 ${bad}`), null, bad);
  assert.throws(() => formatRecord({ ...r, gw: ['x'] }), /bad gateways/);
  assert.throws(() => formatRecord({ ...r, guest: '02:00' }), /bad guest MAC/);
});

test.after(() => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  sh('ip link del brp0; ip link del brp1; ip netns del gst 2>/dev/null; true');
  cleanup();
});

test('no device left behind by the whole file', async () => {
  assert.ok(await until(() => tuns() === ''), tuns());
});

test.run();
