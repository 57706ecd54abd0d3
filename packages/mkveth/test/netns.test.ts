// mkveth -N (docs/recipes.md, "A routed interface in a client's own
// namespace"): a client, uid 65534 in a user and network namespace of its
// own (unshare -rn), sends its namespace through a service chain and gets
// the inside end there with a pool address; the host end, its routes and
// its record stay in the launcher's namespace, out of the client's reach.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ChildProcess } from 'node:child_process';
import { openSync, closeSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { run, sh, tempDir, failsWith, until, NOBODY } from '../../../tools/test/lib/harness.js';
import { confMaker } from '../../../tools/test/lib/launcher.js';
import { as, background, gone } from '../../../tools/test/lib/launcher-attacks.js';
import { startServer } from '../../../tools/test/lib/service.js';
import { assertNetnsRefusals } from '../../../tools/test/lib/netns-refusals.js';
import { hostEnds, settled } from '../../../tools/test/lib/veth.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const conf = confMaker(dir);
sh('ip link add hp0 type veth peer name hp1 && ip addr add 192.0.2.1/24 dev hp0 && ip -6 addr add 2001:db8:2::1/64 dev hp0 nodad && ip link set hp0 up && ip link set hp1 up');
/** A client's own user and network namespace, as uid 65534: resolves once it runs; it prints "ready". */
const client = () => background([...as(NOBODY), 'unshare', '-rn', 'sh', '-c', 'echo ready; exec sleep 300']);
/** Run mkveth with the namespace open at fd 5 (the client's, as fd-recv would place it). */
const withNs = (ns: number, args: string[], env: Record<string, string> = { PEERUID: String(NOBODY) }) =>
  run(['mkveth', ...args], { env, stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', ns] });

test('mkveth -N through a service chain: the client (uid 65534, unshare -rn) sends its namespace and gets the inside end with a pool address there; the host reaches it; its deleting the namespace frees the address', async () => {
  const c = conf('limit 1\n10.90.0.0/30\n');
  const sock = join(dir, 'veth.sock');
  const srv = await startServer(['s6-ipcserver', '-C', '2', sock, 'peer-check', '-a',
    'fd-recv', '-s', '0', '-d', '5', '-t', '20000', 'mkveth', '-c', c, '-N', '5', 'fd-send', '-s', '1', '-e', 'NETIF', '-e', 'NETADDRS', '-e', 'NETGATEWAYS', '-e', 'NETHOSTIF'], sock);
  chmodSync(sock, 0o777);
  const ask = () => background([...as(NOBODY), 'unshare', '-rn', 'sh', '-c',
    `exec s6-ipcclient ${sock} redirfd -r 9 /proc/self/ns/net fd-send -s 7 -d 9 fd-recv -s 6 -e NETIF -e NETADDRS -e NETGATEWAYS -e NETHOSTIF sh -c 'echo "$NETIF $NETADDRS $NETGATEWAYS $NETHOSTIF $(ip -4 -o addr show eth0 | cut -d" " -f7)"; exec sleep 300'`]);
  const procs: ChildProcess[] = [];
  try {
    const a = await ask();
    procs.push(a.proc);
    const [ifname, addrs, gws, hostIf, onEth0] = a.line.split(' ');
    assert.is(ifname, 'eth0');
    assert.match(addrs!, /^10\.90\.0\.[12]\/32$/);
    assert.is(gws, '169.254.1.1');
    assert.is(onEth0, addrs, 'the address is on eth0 in the client\'s namespace');
    assert.equal(hostEnds().map((h) => [h.name, h.record?.uid, h.record?.addrs]), [[hostIf, NOBODY, [addrs]]]);
    // The host reaches the client's namespace, and the client (its own root) the host.
    const addr = addrs!.split('/')[0]!;
    const r = run(['ping', '-c', '1', '-W', '5', addr]);
    assert.is(r.status, 0, r.stdout + r.stderr);
    const back = run([...as(NOBODY), 'nsenter', '--preserve-credentials', '-U', '-n', '-t', String(a.proc.pid), 'ping', '-c', '1', '-W', '5', '192.0.2.1']);
    assert.is(back.status, 0, back.stdout + back.stderr);
    // Its own root, the client still cannot reach the host end or its record: another namespace.
    const poke = run([...as(NOBODY), 'nsenter', '--preserve-credentials', '-U', '-n', '-t', String(a.proc.pid), 'sh', '-c', `ip link set ${hostIf} alias x; ip link del ${hostIf}; ip link show | grep -c ngv-`]);
    assert.match(poke.stderr, /Cannot find device/);
    assert.is(poke.stdout.trim(), '0');
    // The same uid again is at its limit; another gets the /30's other address.
    const again = await ask().then((x) => x.line, (e: Error) => e.message);
    assert.is(again.includes('10.90.0.'), false, again);
    assert.match(srv.output(), /mkveth: fatal: uid 65534 already has 1 veth namespace, the limit is 1/);
    // Deleting the namespace (its last process ends) frees everything; the address is handed out again.
    a.proc.kill('SIGKILL');
    await gone(a.proc);
    assert.is(await settled(), null);
    const b = await ask();
    procs.push(b.proc);
    assert.match(b.line, /^eth0 10\.90\.0\.[12]\/32 /);
    b.proc.kill('SIGKILL');
    await gone(b.proc);
    assert.is(await settled(), null);
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await srv.stop();
  }
  assert.is(await settled(), null);
});

test('mkveth -N: the client, root in its namespace, re-addresses eth0 or changes its MAC: the host end\'s pin drops what it sends from anything but the lease (IPv4 and IPv6); a zero-capability process cannot remove the pin', async () => {
  const c = conf('10.92.0.0/24\nfd00:92::/64\n');
  const k = await client();
  const ns = openSync(`/proc/${k.proc.pid}/ns/net`, 'r');
  const inside = (cmd: string) => run([...as(NOBODY), 'nsenter', '--preserve-credentials', '-U', '-n', '-t', String(k.proc.pid), 'sh', '-c', cmd]);
  try {
    const r = withNs(ns, ['-c', c, '-N', '5', 'sh', '-c', 'echo "$NETADDRS $NETHOSTIF"']);
    assert.is(r.status, 0, r.stderr);
    const [addrs, hostIf] = r.stdout.trim().split(' ');
    const [v4, v6] = addrs!.split(',').map((a) => a.split('/')[0]!);
    assert.match(sh(`tc filter show dev ${hostIf} ingress`).stdout, /netgrant-pin/);
    const ping = (src: string, dst: string) => inside(`ping -c 1 -W 2 -I ${src} ${dst} >/dev/null 2>&1 && echo reached || echo dropped`).stdout.trim();
    assert.is(ping(v4!, '192.0.2.1'), 'reached');
    assert.is(ping(v6!, '2001:db8:2::1'), 'reached');
    // Its own root: another address of the pool (or any) on eth0, as source.
    const add = inside('ip addr add 10.92.0.250/32 dev eth0 && ip -6 addr add fd00:92::250/128 dev eth0 nodad && echo added');
    assert.is(add.stdout.trim(), 'added', add.stderr);
    assert.is(ping('10.92.0.250', '192.0.2.1'), 'dropped');
    assert.is(ping('fd00:92::250', '2001:db8:2::1'), 'dropped');
    // Another MAC: nothing of its gets through, not even from its own addresses.
    inside('ip link set eth0 address 02:00:00:00:92:01');
    assert.is(ping(v4!, '192.0.2.1'), 'dropped');
    // The pin is the launcher namespace's: a zero-capability process cannot remove it.
    const del = run([...as(NOBODY), 'tc', 'filter', 'del', 'dev', hostIf!, 'ingress']);
    assert.is.not(del.status, 0);
    assert.match(sh(`tc filter show dev ${hostIf} ingress`).stdout, /netgrant-pin/);
  } finally {
    closeSync(ns);
    k.proc.kill('SIGKILL');
  }
  assert.is(await settled(), null);
});

test('mkveth -N: refused for a namespace another uid owns, the launcher\'s own, an fd that is not a network namespace, and without PEERUID; the same namespace twice; nothing made', async () => {
  const c = conf('10.90.0.0/24\n');
  const k = await client();
  const ns = openSync(`/proc/${k.proc.pid}/ns/net`, 'r');
  const own = openSync('/proc/self/ns/net', 'r');
  try {
    assertNetnsRefusals('mkveth', ns, (fd, env) => withNs(fd, ['-c', c, '-N', '5', 'sh', '-c', 'echo EXECUTED'], env));
    const ownAny = withNs(own, ['-c', c, '-N', '5', '--any-netns', 'true'], {});
    assert.is(failsWith(ownAny, 'mkveth', 1, /the server's own network namespace/), null, ownAny.stderr);
    const stray = run(['mkveth', '-c', c, '--any-netns', 'true']);
    assert.is(failsWith(stray, 'mkveth', 100, /--any-netns: only with -N/), null, stray.stderr);
    assert.equal(hostEnds(), []);
    // Once, then the same namespace again: its eth0 (and the host end's name) exist.
    const first = withNs(ns, ['-c', c, '-N', '5', 'sh', '-c', 'echo "$NETADDRS"']);
    assert.is(first.status, 0, first.stderr);
    const twice = withNs(ns, ['-c', c, '-N', '5', 'true']);
    assert.is(failsWith(twice, 'mkveth', 111, /create veth link ngv-[0-9a-f]+: .*EEXIST/), null, twice.stderr);
    assert.is(hostEnds().length, 1, 'the first lease only');
    // --any-netns: another uid's namespace is accepted (the administrator said so).
    const other = await client();
    const ns2 = openSync(`/proc/${other.proc.pid}/ns/net`, 'r');
    const any = withNs(ns2, ['-c', c, '-N', '5', '--any-netns', 'true'], { PEERUID: '1000' });
    assert.is(any.status, 0, any.stderr);
    closeSync(ns2);
    other.proc.kill('SIGKILL');
  } finally {
    [ns, own].forEach((fd) => closeSync(fd));
    k.proc.kill('SIGKILL');
  }
  assert.is(await settled(), null);
});

test('mkveth -N: a step failing after the pair exists deletes it (the client\'s namespace outlives the launcher); nothing left', async () => {
  const c = conf('10.91.0.0/30\n');
  const k = await client();
  try {
    const ns = openSync(`/proc/${k.proc.pid}/ns/net`, 'r');
    try {
      // The client's namespace already has a default route: adding ours fails after the pair exists.
      const pre = run([...as(NOBODY), 'nsenter', '--preserve-credentials', '-U', '-n', '-t', String(k.proc.pid), 'sh', '-c', 'ip link add z0 type veth peer name z1 && ip link set z0 up && ip route add default dev z0 && ip route']);
      assert.match(pre.stdout, /default dev z0/, pre.stderr);
      const r = withNs(ns, ['-c', c, '-N', '5', 'sh', '-c', 'echo EXECUTED']);
      assert.is(failsWith(r, 'mkveth', 111, /add route default via 169\.254\.1\.1.*EEXIST/), null, r.stderr);
      assert.is(r.stdout, '');
      assert.ok(await until(() => hostEnds().length === 0, 3000), 'the pair was deleted');
      const inside = run([...as(NOBODY), 'nsenter', '--preserve-credentials', '-U', '-n', '-t', String(k.proc.pid), 'ip', '-o', 'link', 'show']).stdout;
      assert.is(inside.includes('eth0'), false, inside);
    } finally {
      closeSync(ns);
    }
  } finally {
    k.proc.kill('SIGKILL');
  }
  assert.is(await settled(), null);
});

test.after(() => {
  sh('ip link del hp0');
  cleanup();
});

test.run();
