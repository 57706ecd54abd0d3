// mkmacvtap against the real kernel, inside the test's own network
// namespace: parents are veth ends made here; holders are real processes,
// the hostile one uid 65534 with no capability.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { chmodSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, sh, failsWith, until, holdChain, tempDir, NOBODY, PYTHON } from '../../../tools/test/lib/harness.js';

interface IpLink {
  ifname: string;
  ifindex: number;
  address: string;
  flags: string[];
  ifalias?: string;
  stats64?: { rx: { packets: number }; tx: { packets: number } };
  linkinfo?: { info_kind: string; info_data?: Record<string, unknown> };
}
const links = (ns?: string): IpLink[] => JSON.parse(run(['ip', ...(ns ? ['-n', ns] : []), '-d', '-s', '-j', 'link', 'show']).stdout || '[]') as IpLink[];
const macvtaps = (ns?: string) => links(ns).filter((l) => l.linkinfo?.info_kind === 'macvtap');
const link = (name: string, ns?: string) => links(ns).find((l) => l.ifname === name);
const rx = (name: string) => link(name)?.stats64?.rx.packets ?? -1;
/** Delete every macvtap of the test's namespace (what the kernel keeps after a test's holders exit). */
const delMacvtaps = () => {
  for (const l of macvtaps()) run(['ip', 'link', 'del', l.ifname]);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nodesLeft = () => readdirSync('/run/netgrant/macvtap');
/** The holder rule's grace (@netgrant/lease stale.ts), and a little. */
const PAST_GRACE_MS = 2200;
const hold = (argv: string[], env: Record<string, string> = {}, script = 'echo "$TAPNAME $TAPFDS $GUESTMAC"; exec sleep 60') => holdChain(argv, script, env);
/** Write one broadcast frame (no vnet header) on fd 3 of a Python process, as uid 65534 holding the chain's fds. */
const SEND_FRAME = `${PYTHON} -c "import os; os.write(3, bytes.fromhex('ffffffffffff' + os.environ['GUESTMAC'].replace(':', '') + '88b5' + '00' * 46))"`;

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
sh('sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1');
sh('for p in a b c; do ip link add mv$p type veth peer name mv${p}peer && ip link set mv$p up && ip link set mv${p}peer up; done');

test('a 2-queue vnet-header macvtap on an allowed parent: fds placed, exported, recorded, deleted once no process holds them', async () => {
  const { proc, out } = await hold(['mkmacvtap', '-l', 'mva', '-q', '2', '--vnet-hdr']);
  const [name, fds, mac] = out.split(' ');
  assert.match(name!, /^mvtap[0-9a-f]{8}$/);
  assert.is(fds, '3,4');
  const l = link(name!)!;
  assert.is(l.address, mac, 'the guest MAC is the macvtap\'s');
  assert.match(mac!, /^02(:[0-9a-f]{2}){5}$/);
  assert.ok(l.flags.includes('UP'));
  assert.is(l.linkinfo!.info_data!.mode, 'bridge');
  assert.match(l.ifalias!, new RegExp(`^netgrant1 lease by=mkmacvtap uid=0 mac=${mac} node=[1-9][0-9]*\\.[1-9][0-9]* born=[0-9]+$`));
  assert.equal(nodesLeft(), [], 'no node or mount left in the private directory');
  // The next program cannot be executed: that macvtap (which outlives its fds) is the reaper's once the grace is over.
  const x = run(['mkmacvtap', '-l', 'mva', '/nonexistent/prog']);
  assert.is(x.status, 127);
  const failed = macvtaps().find((m) => m.ifname !== name)!;
  run(['netgrant-reap', '-o']);
  assert.ok(link(failed.ifname), 'within the grace: kept (its fds may be in flight to a client)');
  await sleep(PAST_GRACE_MS);
  const swept = run(['netgrant-reap', '-o', '-v']);
  assert.match(swept.stderr, new RegExp(`deleted ${failed.ifname} .*: no process holds its fds`));
  // While held, a sweep keeps it, however long.
  assert.ok(link(name!), 'held: kept');
  proc.kill('SIGKILL');
  assert.ok(await until(() => proc.exitCode !== null || proc.signalCode !== null));
  // A macvtap outlives its fds: it is the reaper that ends it.
  assert.ok(link(name!), 'the kernel keeps a macvtap without fds');
  const r = run(['netgrant-reap', '-o', '-v']);
  assert.match(r.stderr, new RegExp(`deleted ${name} \\(lease by mkmacvtap for uid 0\\): no process holds its fds`));
  assert.is(link(name!), undefined);
});

test('without --vnet-hdr the queues carry none; -m and a config file choose mode and parent; requests only within it', () => {
  const conf = join(dir, 'macvtap.conf');
  writeFileSync(conf, '# allowed parents\nparent mvb mva\nmode private\n');
  chmodSync(conf, 0o644);
  const show = 'ip -d -j link show "$TAPNAME"; echo "$TAPFDS"';
  const r = run(['mkmacvtap', '-c', conf, '-d', '7', 'sh', '-c', show]);
  assert.is(r.status, 0, r.stderr);
  const [json, fds] = r.stdout.split('\n');
  const l = (JSON.parse(json!) as IpLink[])[0]!;
  assert.is(l.linkinfo!.info_data!.mode, 'private');
  assert.match(String((l as unknown as { link: string }).link), /^mvb$/, 'the first listed parent');
  assert.is(fds, '7');
  const req = run(['mkmacvtap', '-c', conf, '-m', 'vepa', '-R', '-q', '2', 'sh', '-c', 'ip -d -j link show "$TAPNAME"; echo $TAPFDS'], { env: { REQPARENT: 'mva', REQQUEUES: '2' } });
  assert.is(req.status, 0, req.stderr);
  const [rj, rf] = req.stdout.split('\n');
  const rl = (JSON.parse(rj!) as (IpLink & { link: string })[])[0]!;
  assert.is(rl.link, 'mva');
  assert.is(rl.linkinfo!.info_data!.mode, 'vepa');
  assert.is(rf, '3,4');
  for (const [env, re] of [
    [{ REQPARENT: 'mvc' }, /request for parent "mvc" refused: not an allowed parent/],
    [{ REQQUEUES: '3' }, /request for 3 queues refused: at most 2/],
  ] as const) {
    const x = run(['mkmacvtap', '-c', conf, '-R', '-q', '2', 'true'], { env });
    assert.is(failsWith(x, 'mkmacvtap', 1, re), null, x.stderr);
  }
  // A queue without a vnet header: a frame written is the frame sent.
  const before = rx('mvcpeer');
  const w = run(['mkmacvtap', '-l', 'mvc', 'sh', '-c', SEND_FRAME]);
  assert.is(w.status, 0, w.stderr);
  assert.ok(rx('mvcpeer') > before, 'the frame left through the parent');
  delMacvtaps();
});

test('two macvtaps in two namespaces with the same ifindex each open their own device', async () => {
  sh('for n in mvt-x mvt-y; do ip netns add $n && ip netns exec $n sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; done');
  try {
    const asNobody = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];
    const chain = (ns: string, parent: string) =>
      `exec 5</run/netns/${ns}; exec mkmacvtap --any-netns -N 5 -l ${parent} ${asNobody.join(' ')} sh -c 'echo "$TAPNAME $GUESTMAC"; ${SEND_FRAME.replace(/'/g, '\'\\\'\'')}'`;
    const bx = rx('mvapeer');
    const by = rx('mvbpeer');
    const x = run(['sh', '-c', chain('mvt-x', 'mva')]);
    assert.is(x.status, 0, x.stderr);
    const y = run(['sh', '-c', chain('mvt-y', 'mvb')]);
    assert.is(y.status, 0, y.stderr);
    const [xl, yl] = [macvtaps('mvt-x')[0]!, macvtaps('mvt-y')[0]!];
    assert.is(xl.ifindex, yl.ifindex, 'the same ifindex in both namespaces');
    assert.is(x.stdout.split(' ')[0], xl.ifname);
    assert.is(y.stdout.split(' ')[0], yl.ifname);
    // Each frame left through its own macvtap's parent, and only there.
    assert.is(rx('mvapeer') - bx, 1, 'x\'s frame on x\'s parent');
    assert.is(rx('mvbpeer') - by, 1, 'y\'s frame on y\'s parent');
    assert.is(xl.stats64!.tx.packets, 1);
    assert.is(yl.stats64!.tx.packets, 1);
  } finally {
    sh('ip netns del mvt-x; ip netns del mvt-y');
  }
  assert.ok(await until(() => macvtaps().length === 0), 'gone with their namespaces');
});

test('hostile holder (uid 65534, no capability): cannot reopen the node; changing the MAC ends the lease; quota counts records', async () => {
  const asNobody = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all'];
  const env = { PEERUID: String(NOBODY) };
  const reopen = run(['mkmacvtap', '-l', 'mva', ...asNobody, PYTHON, '-c', `
import os, errno
try:
    os.open('/proc/self/fd/3', os.O_RDWR); print('opened')
except OSError as e:
    print(errno.errorcode[e.errno])`], { env: { PEERUID: '5002' } });
  assert.is(reopen.stdout.trim(), 'EACCES', reopen.stderr);
  const chain = ['mkmacvtap', '-l', 'mva', '--max-per-peer', '1'];
  const a = await hold([...chain, ...asNobody], env);
  const bornAt = Date.now();
  const name = a.out.split(' ')[0]!;
  assert.match(link(name)!.ifalias!, new RegExp(`uid=${NOBODY} `));
  const second = run([...chain, 'true'], { env });
  assert.is(failsWith(second, 'mkmacvtap', 1, /quota reached: uid 65534 holds 1 macvtap lease here, at most 1/), null, second.stderr);
  assert.is(run([...chain, 'true'], { env: { PEERUID: '5001' } }).status, 0, 'another peer has its own quota');
  // Another process of the same uid cannot open it through the holder's fd either.
  const other = run([...asNobody, PYTHON, '-c', `import os; os.open('/proc/${a.proc.pid}/fd/3', os.O_RDWR)`]);
  assert.is.not(other.status, 0);
  a.proc.kill('SIGKILL');
  await sleep(Math.max(0, PAST_GRACE_MS - (Date.now() - bornAt)));
  const third = run([...chain, 'true'], { env });
  assert.is(third.status, 0, `the dead holder's lease no longer counts: ${third.stderr}`);
  assert.is(link(name), undefined, 'culled by the create');
  // SIOCSIFHWADDR through the fd needs no capability: the record no longer matches, the lease ends.
  const m = await hold(['mkmacvtap', '-l', 'mva', ...asNobody], env, `exec ${PYTHON} -c "
import fcntl, os, struct
ifr = struct.pack('16sH6s', os.environ['TAPNAME'].encode(), 1, bytes.fromhex('02aabbccddee')) + bytes(16)
fcntl.ioctl(3, 0x8924, ifr)
print(os.environ['TAPNAME'], flush=True)
os.execvp('sleep', ['sleep', '60'])"`);
  assert.is(link(m.out)!.address, '02:aa:bb:cc:dd:ee', 'the holder changed the MAC');
  const reap = run(['netgrant-reap', '-o', '-v']);
  assert.match(reap.stderr, new RegExp(`deleted ${m.out} .*: host-side MAC changed to 02:aa:bb:cc:dd:ee`));
  assert.is(link(m.out), undefined);
  m.proc.kill('SIGKILL');
  delMacvtaps();
});

test('-N: a namespace the client owns gets the macvtap (no pin or quota there); one it does not own is refused', async () => {
  const ns = spawn('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'unshare', '-rn', 'sleep', '60'], { stdio: 'ignore' });
  try {
    const path = `/proc/${ns.pid}/ns/net`;
    assert.ok(await until(() => run(['readlink', path]).stdout.trim() !== run(['readlink', '/proc/self/ns/net']).stdout.trim()), 'the client made its namespace');
    const into = (args: string[], peer: string) => run(['sh', '-c', `exec 5<${path}; exec mkmacvtap -N 5 -l mva ${args.join(' ')} sh -c 'echo $TAPNAME'`], { env: { PEERUID: peer } });
    const ok = into([], String(NOBODY));
    assert.is(ok.status, 0, ok.stderr);
    const inside = run(['nsenter', '-t', String(ns.pid), '-n', 'ip', '-j', 'link', 'show', 'type', 'macvtap']).stdout;
    assert.match(inside, new RegExp(`"ifname":"${ok.stdout.trim()}"`), 'made in the client\'s namespace');
    assert.equal(macvtaps(), [], 'not in the server\'s');
    const pin = into(['--pin'], String(NOBODY));
    assert.is(failsWith(pin, 'mkmacvtap', 100, /--pin: the target namespace is owned by a user namespace of its own/), null, pin.stderr);
    const quota = into(['--max-per-peer', '3'], String(NOBODY));
    assert.is(failsWith(quota, 'mkmacvtap', 100, /--max-per-peer: the target namespace is owned/), null, quota.stderr);
    const other = into([], '5000');
    assert.is(failsWith(other, 'mkmacvtap', 1, /not owned by uid 5000/), null, other.stderr);
  } finally {
    ns.kill('SIGKILL');
  }
});

test('bad input: a parent not allowed or missing, queues out of range, a VID out of range or not allowed, bad options and configs; nothing is left', () => {
  const conf = join(dir, 'bad.conf');
  const cases: [string[], number, RegExp, string?][] = [
    [['-l', 'nope0'], 100, /parent nope0: no such interface/],
    [['-l', 'mva', '-q', '0'], 100, /-q: out of range \(1\.\.256\): 0/],
    [['-l', 'mva', '-q', '257'], 100, /-q: out of range \(1\.\.256\): 257/],
    [['-l', 'mva', '-m', 'l2'], 100, /-m: expected bridge, vepa, private, passthru/],
    [['-l', 'mva', '--guest-mac', '01:00:00:00:00:01'], 100, /multicast/],
    [['-l', 'mva', '-m', 'passthru', '--guest-mac', 'random'], 100, /passthru mode the guest has the parent's MAC/],
    [['-l', 'mva', '-N', '9'], 100, /PEERUID not set/],
    [['-c', conf], 100, /bad\.conf:1: unknown directive "allow"/, 'allow mva\n'],
    [['-c', conf], 100, /bad\.conf:1: parent "a\/b"/, 'parent a/b\n'],
    [['-c', join(dir, 'missing.conf')], 111, /ENOENT/],
    // -V: VIDs 1-4094, allowed by the config (or named with -l on the same command line); no VLAN made.
    [['-l', 'mva', '-V', '0'], 100, /-V: VLAN id out of range \(1-4094\): 0/],
    [['-l', 'mva', '-V', '4095'], 100, /-V: VLAN id out of range/],
    [['-l', 'mva', '-V', '4096'], 100, /-V: VLAN id out of range/],
    [['-l', 'mva', '-V', 'ten'], 100, /-V: not a VLAN id/],
    [['-l', 'mva', '-V', '10', '-N', '9', '--any-netns'], 100, /-V excludes -N/],
    [['-l', 'nope0', '-V', '10'], 100, /parent nope0: no such interface/],
    [['-c', conf, '-V', '30'], 1, /-V 30: VLAN 30 on mva is not allowed by the configuration/, 'parent mva\nvlan 10-20\n'],
    [['-c', conf, '-V', '10'], 1, /-V 10: VLAN 10 on mva is not allowed/, 'parent mva\n'],
    [['-c', conf], 100, /bad\.conf:2: vlan: not a VLAN id or range of 1-4094: "0-5"/, 'parent mva\nvlan 0-5\n'],
    [['-c', conf], 100, /bad\.conf:2: vlan: .*"20-10"/, 'parent mva\nvlan 20-10\n'],
    [['-c', conf], 100, /bad\.conf:2: vlan needs VLAN ids/, 'parent mva\nvlan\n'],
  ];
  for (const [args, code, re, text] of cases) {
    if (text !== undefined) {
      writeFileSync(conf, text);
      chmodSync(conf, 0o644);
    }
    const r = run(['mkmacvtap', ...args, 'true']);
    assert.is(failsWith(r, 'mkmacvtap', code, re), null, `${args.join(' ')}: ${r.stderr}`);
  }
  writeFileSync(conf, 'parent mva\n');
  chmodSync(conf, 0o666);
  const writable = run(['mkmacvtap', '-c', conf, 'true']);
  assert.is(failsWith(writable, 'mkmacvtap', 100, /writable/), null, writable.stderr);
  assert.equal(macvtaps(), [], 'no bad input made a macvtap');
  assert.equal(links().filter((l) => l.linkinfo?.info_kind === 'vlan'), [], 'nor a VLAN');
  assert.equal(nodesLeft(), []);
});

test.after(() => {
  sh('for p in a b c; do ip link del mv$p; done');
  cleanup();
});
test.run();
