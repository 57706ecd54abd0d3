// mktap against the real kernel, inside the test's own network namespace.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { openSync } from 'node:fs';
import { run, sh, failsWith, until, holdChain, NOBODY } from '../../../tools/test/lib/harness.js';

interface IpLink {
  ifname: string;
  mtu: number;
  master?: string;
  flags: string[];
  address: string;
  txqlen?: number;
  linkinfo?: { info_kind: string; info_data?: Record<string, unknown> };
}
const link = (name: string): IpLink | undefined => {
  const r = run(['ip', '-d', '-j', 'link', 'show', name]);
  return r.status === 0 ? (JSON.parse(r.stdout) as IpLink[])[0] : undefined;
};
const tunLinks = (): IpLink[] => (JSON.parse(run(['ip', '-d', '-j', 'link', 'show']).stdout) as IpLink[]).filter((l) => l.linkinfo?.info_kind === 'tun');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Start a chain in the background whose last program holds the fds (sleep); resolves once it runs. */
const hold = (argv: string[], env: Record<string, string> = {}) => holdChain(argv, 'echo "$TAPNAME"; exec sleep 60', env);

sh('ip link add br-t0 type bridge && ip link set br-t0 up && ip link add vx0 type veth peer name vx1');

test('a multiqueue vnet-header tap on a bridge, owned, up, fds placed and exported', () => {
  const r = run(['mktap', '-b', 'br-t0', '--vnet-hdr', '-q', '2', '-o', String(NOBODY), '-g', String(NOBODY), '-m', '1400', '--txqueuelen', '500',
    'sh', '-c', 'echo "$TAPNAME $TAPFD $TAPFDS $TAPMAC"; for f in 3 4; do grep iff /proc/$$/fdinfo/$f; done; ip -d -j link show "$TAPNAME"']);
  assert.is(r.status, 0, r.stderr);
  const [head, iff3, iff4, json] = r.stdout.split('\n');
  const [name, fd, fds, mac] = head!.split(' ');
  assert.match(name!, /^tap\d+$/);
  assert.is(fd, '3');
  assert.is(fds, '3,4');
  assert.match(mac!, /^fe(:[0-9a-f]{2}){5}$/);
  assert.match(iff3!, new RegExp(`iff:\\s+${name}`));
  assert.match(iff4!, new RegExp(`iff:\\s+${name}`));
  const l = (JSON.parse(json!) as IpLink[])[0]!;
  assert.is(l.master, 'br-t0');
  assert.ok(l.flags.includes('UP'));
  assert.is(l.mtu, 1400);
  assert.is(l.txqlen, 500);
  assert.is(l.address, mac);
  const d = l.linkinfo!.info_data!;
  assert.is(d.type, 'tap');
  assert.is(d.vnet_hdr, true);
  assert.is(d.multi_queue, true);
  assert.is(d.numqueues, 2);
  assert.is(d.user, 'nobody');
  assert.is(d.group, 'nogroup');
  assert.is(d.persist, false);
  assert.is(link(name!), undefined, 'the lease ended with the program');
});

test('lease: a holder killed with SIGKILL leaves no tap; a failed step leaves none', async () => {
  const { proc, out: name } = await hold(['mktap', '-b', 'br-t0']);
  assert.ok(link(name), 'tap exists while held');
  proc.kill('SIGKILL');
  assert.ok(await until(() => link(name) === undefined), 'tap gone after kill -9');
  // A step after creation fails (the tap's max MTU is 65521): nothing remains.
  const before = tunLinks().length;
  const r = run(['mktap', '-m', '65535', 'true']);
  assert.is(failsWith(r, 'mktap', 111, /EINVAL/), null, r.stderr);
  // The next program cannot be executed: the process ends, so does the tap.
  const x = run(['mktap', '-n', 'gone0', '/nonexistent/prog']);
  assert.is(x.status, 127);
  assert.is(tunLinks().length, before);
  assert.is(link('gone0'), undefined);
});

test('persistent taps need an owner, stay, and an existing name is never taken over', () => {
  const r = run(['mktap', '-n', 'keep0', '--persist', '-o', String(NOBODY)]);
  assert.is(r.status, 0, r.stderr);
  const l = link('keep0')!;
  assert.is(l.linkinfo!.info_data!.persist, true);
  assert.is(l.linkinfo!.info_data!.user, 'nobody');
  // Naming it again must not attach to it (IFF_TUN_EXCL).
  const again = run(['mktap', '-n', 'keep0', 'sh', '-c', 'echo attached']);
  assert.is(failsWith(again, 'mktap', 111, /EBUSY/), null, again.stderr);
  assert.is(link('keep0')!.linkinfo!.info_data!.persist, true, 'untouched');
  run(['ip', 'link', 'del', 'keep0']);
  const noOwner = run(['mktap', '--persist']);
  assert.is(failsWith(noOwner, 'mktap', 100, /--persist needs an owner/), null, noOwner.stderr);
});

test('--owner-from-peer and --stable-mac use PEERUID/PEERGID', () => {
  const env = { PEERUID: '4242', PEERGID: '4343' };
  const a = run(['mktap', '-n', 'st0', '--owner-from-peer', '--stable-mac', 'sh', '-c', 'echo $TAPMAC; ip -d -j link show st0'], { env });
  assert.is(a.status, 0, a.stderr);
  const [mac, json] = a.stdout.split('\n');
  const d = (JSON.parse(json!) as IpLink[])[0]!.linkinfo!.info_data!;
  assert.is(String(d.user), '4242');
  assert.is(String(d.group), '4343');
  const b = run(['mktap', '-n', 'st0', '--owner-from-peer', '--stable-mac', 'sh', '-c', 'echo $TAPMAC'], { env });
  assert.is(b.stdout.trim(), mac, 'same peer, same name: same MAC');
  const c = run(['mktap', '-n', 'st0', '--owner-from-peer', '--stable-mac', 'sh', '-c', 'echo $TAPMAC'], { env: { PEERUID: '4243', PEERGID: '1' } });
  assert.is.not(c.stdout.trim(), mac);
  const none = run(['mktap', '--owner-from-peer']);
  assert.is(failsWith(none, 'mktap', 100, /PEERUID or PEERGID not set/), null, none.stderr);
});

test('requests are honoured only within the administrator limits', () => {
  const ok = run(['mktap', '-q', '4', '-m', '9000', '--vnet-hdr', '-R', '--name-prefix', 'vm-', 'sh', '-c', 'echo $TAPNAME $TAPFDS; ip -d -j link show $TAPNAME'], {
    env: { REQQUEUES: '2', REQMTU: '1500', REQNAME: 'vm-alice', REQVNETHDR: '0' },
  });
  assert.is(ok.status, 0, ok.stderr);
  const [head, json] = ok.stdout.split('\n');
  assert.is(head, 'vm-alice 3,4');
  const l = (JSON.parse(json!) as IpLink[])[0]!;
  assert.is(l.mtu, 1500);
  assert.is(l.linkinfo!.info_data!.vnet_hdr, false);
  for (const [env, re] of [
    [{ REQQUEUES: '8' }, /request for 8 queues refused: at most 4/],
    [{ REQMTU: '9001' }, /MTU 9001 refused/],
    [{ REQNAME: 'root-tap' }, /must start with "vm-"/],
    [{ REQVNETHDR: '1' }, /vnet header refused/],
  ] as const) {
    const r = run(['mktap', '-q', '4', '-m', '9000', '-R', '--name-prefix', 'vm-', 'true'], { env });
    assert.is(failsWith(r, 'mktap', 1, re), null, r.stderr);
  }
  // Without -R the request variables are not even read.
  const ignored = run(['mktap', 'sh', '-c', 'echo $TAPFDS'], { env: { REQQUEUES: '2' } });
  assert.is(ignored.stdout, '3\n');
  const badName = run(['mktap', '-R', '--name-prefix', 'vm-', 'true'], { env: { REQNAME: 'vm-xxxxxxxxxxxxxx' } });
  assert.is(failsWith(badName, 'mktap', 100, /REQNAME: invalid interface name/), null, badName.stderr);
});

test('quota: --max-per-peer counts the peer\'s live taps from the kernel, also under concurrency', async () => {
  const env = { PEERUID: '5000', PEERGID: '5000' };
  const chain = ['mktap', '--owner-from-peer', '--max-per-peer', '2'];
  const a = await hold(chain, env);
  const b = await hold(chain, env);
  const third = run([...chain, 'true'], { env });
  assert.is(failsWith(third, 'mktap', 1, /quota reached: uid 5000 holds 2 tap\/tun leases here, at most 2/), null, third.stderr);
  assert.is(run([...chain, 'true'], { env: { PEERUID: '5001', PEERGID: '5001' } }).status, 0, 'another peer has its own quota');
  a.proc.kill('SIGKILL');
  assert.ok(await until(() => link(a.out) === undefined));
  assert.is(run([...chain, 'true'], { env }).status, 0, 'a freed lease frees quota');
  b.proc.kill('SIGKILL');
  await until(() => link(b.out) === undefined);
  // 12 requests at once at quota 5: exactly 5 get a tap.
  const results = await Promise.allSettled(Array.from({ length: 12 }, () => hold(['mktap', '--owner-from-peer', '--max-per-peer', '5'], env)));
  const won = results.filter((r) => r.status === 'fulfilled') as PromiseFulfilledResult<{ proc: ChildProcess; out: string }>[];
  assert.is(won.length, 5);
  assert.is(tunLinks().filter((l) => String(l.linkinfo?.info_data?.user) === '5000').length, 5);
  for (const w of won) w.value.proc.kill('SIGKILL');
  await until(() => tunLinks().length === 0);
});

test('-N: a tap in a namespace the peer owns; refused for another owner or a non-netns fd', async () => {
  const holder = spawn('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'unshare', '--user', '--net', 'sleep', '30'], { stdio: 'ignore' });
  try {
    await sleep(300);
    const ns = openSync(`/proc/${holder.pid}/ns/net`, 'r');
    const inside = (cmd: string) => run(['nsenter', `--net=/proc/${holder.pid}/ns/net`, 'sh', '-c', cmd]);
    const r = run(['mktap', '-N', '5', '-n', 'in0', '--owner-from-peer', 'sh', '-c', 'ip link show in0 >/dev/null 2>&1 && echo visible-here || echo not-here; sleep 0.5'],
      { env: { PEERUID: String(NOBODY), PEERGID: String(NOBODY) }, stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', ns] });
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stdout, 'not-here\n', 'created in the other namespace, not ours');
    const other = run(['mktap', '-N', '5', 'true'], { env: { PEERUID: '1000', PEERGID: '1000' }, stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', ns] });
    assert.is(failsWith(other, 'mktap', 1, /not owned by uid 1000/), null, other.stderr);
    const anyNs = run(['mktap', '-N', '5', '--any-netns', '-n', 'in1', 'sh', '-c', 'true'], { stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', ns] });
    assert.is(anyNs.status, 0, anyNs.stderr);
    const file = openSync('/etc/passwd', 'r');
    const notNs = run(['mktap', '-N', '5', 'true'], { env: { PEERUID: '0', PEERGID: '0' }, stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', file] });
    assert.is(failsWith(notNs, 'mktap', 100, /-N/), null, notNs.stderr);
    const mnt = openSync('/proc/self/ns/mnt', 'r');
    const mntNs = run(['mktap', '-N', '5', 'true'], { env: { PEERUID: '0', PEERGID: '0' }, stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', mnt] });
    assert.is(failsWith(mntNs, 'mktap', 100, /not a net namespace/), null, mntNs.stderr);
    // The server's own namespace is never a client's, even with --any-netns.
    const own = openSync('/proc/self/ns/net', 'r');
    for (const extra of [[], ['--any-netns']]) {
      const ownNs = run(['mktap', '-N', '5', ...extra, 'true'], { env: { PEERUID: '0', PEERGID: '0' }, stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', own] });
      assert.is(failsWith(ownNs, 'mktap', 1, /-N: the server's own network namespace/), null, ownNs.stderr);
    }
    const noPeer = run(['mktap', '-N', '5', 'true'], { stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', ns] });
    assert.is(failsWith(noPeer, 'mktap', 100, /-N: PEERUID not set/), null, noPeer.stderr);
    const missing = run(['mktap', '-N', '5', 'true'], { env: { PEERUID: '0', PEERGID: '0' } });
    assert.is(failsWith(missing, 'mktap', 100, /-N: fd 5 is not open/), null, missing.stderr);
    void inside;
  } finally {
    holder.kill('SIGKILL');
  }
});

test('/dev/net/tun missing: a clear system error', () => {
  const r = run(['unshare', '--mount', 'sh', '-c', 'mount -t tmpfs none /dev/net && exec mktap true']);
  assert.is(failsWith(r, 'mktap', 111, /open \/dev\/net\/tun: No such file or directory \(ENOENT\)/), null, r.stderr);
});

const bad: [string, string[], Record<string, string>, number, RegExp][] = [
  ['16-byte name', ['-n', 'abcdefghijklmnop'], {}, 100, /-n: invalid interface name/],
  ['name with a slash', ['-n', 'a/b'], {}, 100, /-n: invalid interface name/],
  ['name "."', ['-n', '.'], {}, 100, /-n: invalid interface name/],
  ['kernel template', ['-n', 'tap%d'], {}, 100, /kernel template/],
  ['bad type', ['-t', 'tup'], {}, 100, /expected tap or tun/],
  ['zero queues', ['-q', '0'], {}, 100, /-q: out of range/],
  ['too many queues', ['-q', '300'], {}, 100, /-q: out of range/],
  ['MTU not a number', ['-m', 'big'], {}, 100, /-m: not a number/],
  ['MTU too small', ['-m', '20'], {}, 100, /-m: out of range/],
  ['bad MAC', ['-a', 'zz:00:00:00:00:01'], {}, 100, /not a MAC address/],
  ['multicast MAC', ['-a', '01:00:5e:00:00:01'], {}, 100, /multicast/],
  ['bridge missing', ['-b', 'nosuch0'], {}, 111, /find bridge nosuch0: No such device/],
  ['not a bridge', ['-b', 'vx0'], {}, 100, /vx0 is not a bridge/],
  ['bridge name too long', ['-b', 'b'.repeat(16)], {}, 100, /-b: invalid interface name/],
  ['unknown owner', ['-o', 'no-such-user-q'], {}, 100, /unknown user/],
  ['-d on stdio', ['-d', '1'], {}, 100, /fds 0, 1 and 2 are stdio/],
  ['-d count mismatch', ['-q', '2', '-d', '3,4,5'], {}, 100, /lists 3 fds for 2 queues/],
  ['quota without peer', ['--max-per-peer', '1', '-o', '1'], {}, 100, /PEERUID not set/],
  ['bad PEERUID', ['--owner-from-peer'], { PEERUID: 'root', PEERGID: '0' }, 100, /PEERUID has an invalid value/],
  ['tun with a bridge', ['-t', 'tun', '-b', 'br-t0'], {}, 100, /need a tap/],
  ['--bridge-from-acl without bridge-acl', ['--bridge-from-acl'], {}, 100, /ACLBRIDGE not set/],
  ['-b with --bridge-from-acl', ['-b', 'br-t0', '--bridge-from-acl'], { ACLBRIDGE: 'br-t0' }, 100, /exclude each other/],
  ['bad guest MAC', ['--guest-mac', '02:00:00:00:00'], {}, 100, /--guest-mac: not a MAC address/],
  ['multicast guest MAC', ['--guest-mac', '03:00:00:00:00:01'], {}, 100, /--guest-mac: .* multicast/],
  ['stable guest MAC without peer', ['--guest-mac', 'stable'], {}, 100, /--guest-mac stable: PEERUID not set/],
  ['--guest-ip without --pin', ['--guest-ip', '10.0.0.2'], {}, 100, /--guest-ip needs --pin/],
  ['bad --guest-ip', ['--pin', '--guest-ip', '10.0.0.256'], {}, 100, /--guest-ip: not an IPv4 or IPv6 address/],
  ['--guest-ip with a prefix', ['--pin', '--guest-ip', '10.0.0.0/24'], {}, 100, /--guest-ip: not an IPv4 or IPv6 address/],
  ['--pin on a tun', ['-t', 'tun', '--pin'], {}, 100, /need a tap/],
];
for (const [name, args, env, code, re] of bad) {
  test(`bad input: ${name} (and no device left)`, () => {
    const before = tunLinks().length;
    const r = run(['mktap', ...args, 'true'], { env });
    assert.is(failsWith(r, 'mktap', code, re), null, r.stderr);
    assert.is(tunLinks().length, before);
  });
}

test('--guest-mac is exported as GUESTMAC (stable: the same for the same peer and name, not the host side); --pin attaches the filter before the fd is handed on', () => {
  const env = { PEERUID: '5000', PEERGID: '5000' };
  const show = (extra: string[]) => run(['mktap', '-n', 'gm0', '-b', 'br-t0', ...extra, 'sh', '-c', 'echo "$GUESTMAC $TAPMAC"; tc filter show dev gm0 ingress'], { env });
  const a = show(['--guest-mac', 'stable', '--pin', '--guest-ip', '10.0.0.2', '--guest-ip', 'fd00::2']);
  assert.is(a.status, 0, a.stderr);
  const [guest, host] = a.stdout.split('\n')[0]!.split(' ');
  assert.match(guest!, /^02(:[0-9a-f]{2}){5}$/);
  assert.is.not(guest, host);
  assert.match(a.stdout, /bpf .*netgrant-pin direct-action/);
  assert.is(show(['--guest-mac', 'stable']).stdout.split(' ')[0], guest);
  const plain = show(['--guest-mac', '02:11:22:33:44:55']);
  assert.is(plain.stdout.split('\n')[0], `02:11:22:33:44:55 ${plain.stdout.split('\n')[0]!.split(' ')[1]}`);
  assert.not.match(plain.stdout, /bpf/, 'no filter without --pin');
  assert.match(show(['--guest-mac', 'random']).stdout, /^02(:[0-9a-f]{2}){5} /);
});

test('--pin into a namespace the peer owns is refused (its owner could remove the filter), and leaves nothing', async () => {
  const holder = spawn('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'unshare', '--user', '--net', 'sleep', '30'], { stdio: 'ignore' });
  try {
    await sleep(300);
    const ns = openSync(`/proc/${holder.pid}/ns/net`, 'r');
    const r = run(['mktap', '-N', '5', '--owner-from-peer', '--pin', 'true'], { env: { PEERUID: String(NOBODY), PEERGID: String(NOBODY) }, stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', ns] });
    assert.is(failsWith(r, 'mktap', 100, /--pin: the target namespace is owned by a user namespace of its own/), null, r.stderr);
    assert.is(run(['nsenter', `--net=/proc/${holder.pid}/ns/net`, 'ip', '-o', 'link', 'show', 'type', 'tun']).stdout, '');
  } finally {
    holder.kill('SIGKILL');
  }
});

test('no device left behind by the whole file', () => {
  assert.equal(tunLinks().map((l) => l.ifname), []);
  void readFileSync;
});

test.run();
