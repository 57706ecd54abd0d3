// mkveth natively (this kernel has veth and bridge): routed launches in the
// test's own namespace (the launcher's), bridged ones on a bridge of the
// test's, and what every launcher refuses. After each launch ends, nothing
// is left in the launcher's namespace: no link, route or proxy entry.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { chmodSync, readFileSync } from 'node:fs';
import { run, sh, tempDir, failsWith, until, NOBODY } from '../../../tools/test/lib/harness.js';
import { confMaker, hold, configFileRefusals, LAUNCHER_BAD_OPTIONS } from '../../../tools/test/lib/launcher.js';
import { as } from '../../../tools/test/lib/launcher-attacks.js';
import { hostEnds, settled } from '../../../tools/test/lib/veth.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const conf = confMaker(dir);
const mounts: string[] = [];
const AS_NOBODY = as(NOBODY);
// "The host": addresses of the test's namespace, on a veth of its own.
sh('ip link add hp0 type veth peer name hp1 && ip addr add 192.0.2.1/24 dev hp0 && ip -6 addr add 2001:db8:2::1/64 dev hp0 nodad && ip link set hp0 up && ip link set hp1 up');
// A bridge with an address in a subnet bridged launches use.
sh('ip link add vbr0 type bridge && ip addr add 10.61.0.1/24 dev vbr0 && ip -6 addr add fd00:61::1/64 dev vbr0 nodad && ip link set vbr0 up');
const sysctl = (path: string) => readFileSync(`/proc/sys/net/${path}`, 'utf8').trim();

test('mkveth: a routed launch: inside end, /32 and /128 addresses, link-local gateways, host end with its record, routes, proxy ARP/NDP; the host and the namespace reach each other; nothing left after', async () => {
  const c = conf('10.60.0.0/24\nfd00:60::/64\n');
  const l = await hold(['mkveth', '-c', c, 'cap-drop', '-u', String(NOBODY), '-g', String(NOBODY), '--']);
  try {
    const { NETIF, NETADDRS } = l.vars;
    assert.is(NETIF, 'eth0');
    const [v4, v6] = NETADDRS!.split(',');
    assert.match(v4!, /^10\.60\.0\.\d+\/32$/);
    assert.match(v6!, /^fd00:60:[0-9a-f:]+\/128$/);
    const inside = ['nsenter', `--net=/proc/${l.proc.pid}/ns/net`];
    const env = run([...inside, 'sh', '-c', `tr '\\0' '\\n' < /proc/${l.proc.pid}/environ | grep ^NET | sort; grep -E '^(Uid|CapEff)' /proc/${l.proc.pid}/status`]).stdout;
    const ends = hostEnds();
    assert.is(ends.length, 1);
    const h = ends[0]!;
    assert.match(h.name, /^ngv-[0-9a-f]{1,11}$/);
    assert.ok(env.includes(`NETHOSTIF=${h.name}\n`), env);
    assert.ok(env.includes('NETGATEWAYS=169.254.1.1,fe80::1\n'), env);
    assert.match(env, /Uid:\s+65534\s/);
    assert.match(env, /CapEff:\s+0000000000000000/);
    assert.equal(h.record, { kind: 'lease', by: 'mkveth', uid: 0, addrs: [v4!, v6!] });
    // The namespace: lo and eth0 only; the gateways' entries are the host end's MAC.
    const hostMac = JSON.parse(sh(`ip -j link show ${h.name}`).stdout)[0].address as string;
    const state = run([...inside, 'sh', '-c', 'ip -o link show | cut -d: -f2; ip route show; ip -6 route show default; ip neigh show; ip -6 neigh show']).stdout;
    assert.match(state, /^ lo\n eth0@if\d+\n/);
    assert.match(state, /default via 169\.254\.1\.1 dev eth0/);
    assert.match(state, /169\.254\.1\.1 dev eth0 scope link/);
    assert.match(state, /default via fe80::1 dev eth0/);
    assert.ok(state.includes(`169.254.1.1 dev eth0 lladdr ${hostMac} PERMANENT`), state);
    assert.ok(state.includes(`fe80::1 dev eth0 lladdr ${hostMac} PERMANENT`), state);
    // The host end: routes to each address, proxy ARP/NDP, forwarding, strict reverse path.
    assert.ok(sh('ip route show').stdout.includes(`${v4!.split('/')[0]} dev ${h.name} scope link`));
    assert.ok(sh('ip -6 route show').stdout.includes(`${v6!.split('/')[0]} dev ${h.name}`));
    assert.match(sh('ip -6 neigh show proxy').stdout, new RegExp(`fe80::1 dev ${h.name} proxy`));
    assert.equal(['ipv4/conf/X/proxy_arp', 'ipv4/conf/X/forwarding', 'ipv4/conf/X/rp_filter', 'ipv4/neigh/X/proxy_delay', 'ipv6/conf/X/proxy_ndp', 'ipv6/conf/X/forwarding', 'ipv6/conf/X/accept_ra'].map((p) => sysctl(p.replace('X', h.name))), ['1', '1', '1', '0', '1', '1', '0']);
    // Both ways, both families: the namespace's program (uid 65534) reaches the host, the host reaches it.
    for (const [from, to] of [[inside, '192.0.2.1'], [inside, '2001:db8:2::1'], [[], v4!.split('/')[0]!], [[], v6!.split('/')[0]!]] as const) {
      const r = run([...from, ...AS_NOBODY, 'ping', '-c', '1', '-W', '5', to]);
      assert.is(r.status, 0, `${to}: ${r.stdout}${r.stderr}`);
    }
  } finally {
    l.proc.kill('SIGKILL');
  }
  assert.is(await settled(), null);
});

test('mkveth: two launches get different addresses and reach each other through the host', async () => {
  const c = conf('10.60.0.0/24\n');
  const a = await hold(['mkveth', '-c', c]);
  const b = await hold(['mkveth', '-c', c]);
  try {
    assert.is.not(a.vars.NETADDRS, b.vars.NETADDRS);
    const r = run(['nsenter', `--net=/proc/${a.proc.pid}/ns/net`, 'ping', '-c', '1', '-W', '5', b.vars.NETADDRS!.split('/')[0]!]);
    assert.is(r.status, 0, r.stdout + r.stderr);
  } finally {
    a.proc.kill('SIGKILL');
    b.proc.kill('SIGKILL');
  }
  assert.is(await settled(), null);
});

test('mkveth: bridge BR: the host end is a port of the bridge, the namespace has addr/prefix and routes via the subnet\'s gateway', async () => {
  const c = conf('bridge vbr0\n10.61.0.0/24\nfd00:61::/64\n');
  const l = await hold(['mkveth', '-c', c]);
  try {
    const [v4, v6] = l.vars.NETADDRS!.split(',');
    assert.match(v4!, /^10\.61\.0\.\d+\/24$/);
    assert.is.not(v4, '10.61.0.1/24');
    assert.match(v6!, /^fd00:61:[0-9a-f:]+\/64$/);
    const h = hostEnds()[0]!;
    assert.is(h.master, 'vbr0');
    assert.is(sh('ip route show; ip -6 route show').stdout.includes(h.name), false, 'no host routes: bridged');
    const inside = ['nsenter', `--net=/proc/${l.proc.pid}/ns/net`];
    const gw = run([...inside, 'sh', '-c', 'echo $(ip -j route show default | grep -o "\\"gateway\\":\\"[^\\"]*\\"") $(ip -6 -j route show default | grep -o "\\"gateway\\":\\"[^\\"]*\\"")']).stdout;
    assert.is(gw.trim(), '"gateway":"10.61.0.1" "gateway":"fd00:61::1"');
    for (const to of ['10.61.0.1', 'fd00:61::1']) {
      const r = run([...inside, 'ping', '-c', '1', '-W', '5', to]);
      assert.is(r.status, 0, `${to}: ${r.stdout}${r.stderr}`);
    }
  } finally {
    l.proc.kill('SIGKILL');
  }
  assert.is(await settled(), null);
});

test('mkveth: per-user limit (config "limit"), and a full pool is a clear error', async () => {
  // A /30: two usable addresses.
  const c = conf('limit 1\n10.62.0.0/30\n');
  const a = await hold(['mkveth', '-c', c], { PEERUID: '7000' });
  try {
    const again = run(['mkveth', '-c', c, 'true'], { env: { PEERUID: '7000' } });
    assert.is(failsWith(again, 'mkveth', 1, /uid 7000 already has 1 veth namespace, the limit is 1/), null, again.stderr);
    const b = await hold(['mkveth', '-c', c], { PEERUID: '7001' });
    try {
      assert.equal([a.vars.NETADDRS, b.vars.NETADDRS].sort(), ['10.62.0.1/32', '10.62.0.2/32']);
      const full = run(['mkveth', '-c', c, 'sh', '-c', 'echo EXECUTED'], { env: { PEERUID: '7002' } });
      assert.is(failsWith(full, 'mkveth', 111, /allocate an address in 10\.62\.0\.0\/30: .*no free address/), null, full.stderr);
      assert.is(full.stdout, '');
    } finally {
      b.proc.kill('SIGKILL');
    }
  } finally {
    a.proc.kill('SIGKILL');
  }
  assert.is(await settled(), null);
  // Once the namespaces are gone, the addresses and the limit are free again.
  assert.is(run(['mkveth', '-c', c, 'true'], { env: { PEERUID: '7000' } }).status, 0);
  assert.is(await settled(), null);
});

const badConf: [string, () => string, number, RegExp][] = [
  ...configFileRefusals(dir, conf, '10.60.0.0/24\n', mounts),
  ['a parent (a veth has none)', () => conf('10.60.0.0/24 parent hp0\n'), 100, /unknown option "parent"/],
  ['a mode', () => conf('mode bridge\n10.60.0.0/24\n'), 100, /not a subnet .* or a directive: "mode"/],
  ['a gateway without bridge', () => conf('10.60.0.0/24 gateway 10.60.0.1\n'), 100, /10\.60\.0\.0\/24: a gateway only with "bridge"/],
  ['a bridge that does not exist', () => conf('bridge nobr0\n10.61.0.0/24\n'), 100, /bridge nobr0: no such bridge/],
  ['a bridge that is not one', () => conf('bridge hp0\n10.61.0.0/24\n'), 100, /bridge hp0: no such bridge/],
  ['a bad bridge name', () => conf('bridge a/b\n10.61.0.0/24\n'), 100, /c\d+\.conf:1: bridge "a\/b"/],
  ['a bridged subnet without a gateway', () => conf('bridge vbr0\n10.63.0.0/24\n'), 100, /10\.63\.0\.0\/24: no gateway/],
  ['an empty config', () => conf('limit 2\n'), 100, /no subnet listed/],
];
for (const [name, make, code, re] of badConf) {
  test(`mkveth: refused: config ${name}; nothing created`, () => {
    const r = run(['mkveth', '-c', make(), 'sh', '-c', 'echo EXECUTED']);
    assert.is(failsWith(r, 'mkveth', code, re), null, r.stderr);
    assert.is(r.stdout, '');
    assert.equal(hostEnds(), []);
  });
}

test('mkveth: bad options and a bad IFNAME; nothing left', async () => {
  const c = conf('10.60.0.0/24\n');
  for (const [args, re] of [...LAUNCHER_BAD_OPTIONS, [['-m', 'bridge'], /unknown option -m/]] as const) {
    const r = run(['mkveth', '-c', c, ...args, 'true']);
    assert.is(failsWith(r, 'mkveth', 100, re), null, r.stderr);
  }
  const badPeer = run(['mkveth', '-c', c, 'true'], { env: { PEERUID: 'x' } });
  assert.is(failsWith(badPeer, 'mkveth', 100, /PEERUID has an invalid value/), null, badPeer.stderr);
  // A name the new namespace already has: the kernel refuses the pair, nothing is made.
  const lo = run(['mkveth', '-c', c, '-i', 'lo', 'sh', '-c', 'echo EXECUTED']);
  assert.is(failsWith(lo, 'mkveth', 111, /create veth link ngv-[0-9a-f]+: .*EEXIST/), null, lo.stderr);
  assert.is(lo.stdout, '');
  assert.is(await settled(), null);
});

test('mkveth: -i names the inside end', async () => {
  const r = run(['mkveth', '-c', conf('10.60.0.0/24\n'), '-i', 'uplink0', 'sh', '-c', 'echo $NETIF; ip -o link show uplink0 | wc -l']);
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, 'uplink0\n1\n');
  assert.is(await settled(), null);
});

test('mkveth: the lease lock held by root: a launch waits at most -t, then a clear error; nothing created', async () => {
  const c = conf('10.60.0.0/24\n');
  assert.is(run(['mkveth', '-c', c, 'true']).status, 0, 'a first launch makes the lock');
  const holder = spawn('flock', ['-x', '-o', '/run/netgrant/lease.lock', 'sleep', '60'], { stdio: 'ignore', detached: true });
  try {
    assert.ok(await until(() => /FLOCK\s+ADVISORY\s+WRITE/.test(readFileSync('/proc/locks', 'utf8')), 5000));
    const r = run(['mkveth', '-c', c, '-t', '300', 'sh', '-c', 'echo EXECUTED']);
    assert.is(failsWith(r, 'mkveth', 111, /lock \/run\/netgrant\/lease\.lock: .*ETIMEDOUT/), null, r.stderr);
    assert.is(r.stdout, '');
  } finally {
    process.kill(-holder.pid!, 'SIGKILL');
  }
  assert.is(await settled(), null);
});

test('mkveth: capability-aware: as uid 65534 with only permitted (ambient) capabilities; nothing left for the program', async () => {
  const c = conf('10.60.0.0/24\nfd00:60::/64\n');
  const caps = '+dac_override,+sys_admin,+net_admin';
  const r = run([...AS_NOBODY, `--inh-caps=${caps}`, `--ambient-caps=${caps}`, 'mkveth', '-c', c, 'sh', '-c', 'id -u; echo $NETADDRS; ping -c 1 -W 5 192.0.2.1 >/dev/null && echo reached; grep -E "^Cap(Inh|Prm|Eff|Amb)" /proc/self/status']);
  assert.is(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.is(lines[0], String(NOBODY));
  assert.match(lines[1]!, /^10\.60\.0\.\d+\/32,fd00:60:/);
  assert.is(lines[2], 'reached');
  assert.is(lines.length, 7);
  for (const l of lines.slice(3)) assert.match(l, /:\s+0000000000000000$/, l);
  const none = run([...AS_NOBODY, 'mkveth', '-c', c, 'true']);
  assert.is(failsWith(none, 'mkveth', 111, /need CAP_DAC_OVERRIDE in the permitted set/), null, none.stderr);
  assert.is(await settled(), null);
});

test.after(() => {
  for (const m of mounts) sh(`umount ${m}`);
  sh('ip link del hp0; ip link del vbr0');
  cleanup();
});

test.run();
