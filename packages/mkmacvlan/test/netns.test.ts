// mkmacvlan -N (docs/recipes.md, "A macvlan in a client's own namespace"):
// a client, uid 65534 in a user and network namespace of its own (unshare
// -rn), sends its namespace through a service chain and gets the macvlan
// there with a pool address; a peer macvlan on the same parent (another
// launch, in a namespace of its own) reaches it. What the client, root in
// there, does to the link: netns-attacks.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ChildProcess } from 'node:child_process';
import { openSync, closeSync, chmodSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, sh, tempDir, failsWith, holdChain, NOBODY } from '../../../tools/test/lib/harness.js';
import { confMaker } from '../../../tools/test/lib/launcher.js';
import { as, background, gone, OTHER } from '../../../tools/test/lib/launcher-attacks.js';
import { startServer } from '../../../tools/test/lib/service.js';
import { assertNetnsRefusals } from '../../../tools/test/lib/netns-refusals.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const conf = confMaker(dir);
// Parents: mp0 (the host's 10.95.0.1/24), mr0 (10.97.0.1/24).
for (const [dev, net] of [['mp0', '10.95.0.1/24'], ['mr0', '10.97.0.1/24']] as const) {
  sh(`ip link add ${dev} type veth peer name ${dev.replace('0', '1')} && ip addr add ${net} dev ${dev} && ip link set ${dev} up && ip link set ${dev.replace('0', '1')} up`);
}

/** A client's own user and network namespace, as uid 65534: resolves once it runs. */
const client = () => background([...as(NOBODY), 'unshare', '-rn', 'sh', '-c', 'echo ready; exec sleep 300']);
/** Run a shell command as the client, root in its own namespaces. */
const inside = (pid: number, cmd: string) => run([...as(NOBODY), 'nsenter', '--preserve-credentials', '-U', '-n', '-t', String(pid), 'sh', '-c', cmd]);
/** Run mkmacvlan with the namespace open at fd 5 (the client's, as fd-recv would place it). */
const withNs = (ns: number, args: string[], env: Record<string, string> = { PEERUID: String(NOBODY) }) =>
  run(['mkmacvlan', ...args], { env, stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', ns] });
const entries = () => readdirSync('/run/netgrant/launched').map((n) => readFileSync(`/run/netgrant/launched/${n}`, 'latin1').trim());

test('mkmacvlan -N through a service chain: the client (uid 65534, unshare -rn) sends its namespace, gets the macvlan there with a pool address, a peer on the parent reaches it; its limit; its namespace deleted, still counted at once (a tombstone)', async () => {
  const c = conf('limit 1\n10.95.0.0/24\n');
  const sock = join(dir, 'macvlan.sock');
  const srv = await startServer(['s6-ipcserver', '-C', '2', sock, 'peer-check', '-a',
    'fd-recv', '-s', '0', '-d', '5', '-t', '20000', 'mkmacvlan', '-c', c, '-N', '5', 'fd-send', '-s', '1', '-e', 'NETIF', '-e', 'NETADDRS', '-e', 'NETGATEWAYS'], sock);
  chmodSync(sock, 0o777);
  const ask = () => background([...as(NOBODY), 'unshare', '-rn', 'sh', '-c',
    `exec s6-ipcclient ${sock} redirfd -r 9 /proc/self/ns/net fd-send -s 7 -d 9 fd-recv -s 6 -e NETIF -e NETADDRS -e NETGATEWAYS sh -c 'echo "$NETIF $NETADDRS $NETGATEWAYS $(ip -4 -o addr show eth0 | cut -d" " -f7) $(ip route show default | cut -d" " -f3)"; exec sleep 300'`]);
  const procs: ChildProcess[] = [];
  try {
    // The peer: another uid's launch on the same parent, in a namespace of its own.
    const peer = await holdChain(['mkmacvlan', '-c', c], 'echo "$NETADDRS"; exec sleep 300', { PEERUID: String(OTHER) });
    procs.push(peer.proc);
    const pingFromPeer = (addr: string) => run(['nsenter', `--net=/proc/${peer.proc.pid}/ns/net`, 'ping', '-c', '1', '-W', '5', addr]);
    const a = await ask();
    procs.push(a.proc);
    const [ifname, addrs, gws, onEth0, via] = a.line.split(' ');
    assert.is(ifname, 'eth0');
    assert.match(addrs!, /^10\.95\.0\.\d+\/24$/);
    assert.is.not(addrs, peer.out);
    assert.is(gws, '10.95.0.1');
    assert.is(onEth0, addrs, 'the address is on eth0 in the client\'s namespace');
    assert.is(via, '10.95.0.1', 'routed via the gateway');
    const r = pingFromPeer(addrs!.split('/')[0]!);
    assert.is(r.status, 0, r.stdout + r.stderr);
    assert.ok(entries().some((e) => / uid=65534 .* client=1$/.test(e) && e.includes(` addrs=${addrs} `)), entries().join('\n'));
    // The same uid again is at its limit.
    const again = await ask().then((x) => x.line, (e: Error) => e.message);
    assert.is(again.includes('10.95.0.'), false, again);
    assert.match(srv.output(), /mkmacvlan: fatal: uid 65534 already has 1 launched namespace, the limit is 1/);
    // Deleting the namespace (its last process ends): the id goes, and the entry stays a tombstone for
    // a few seconds (the kernel unregisters a dying namespace's devices after it drops the id): still counted.
    a.proc.kill('SIGKILL');
    await gone(a.proc);
    const right = await ask().then((x) => x.line, (e: Error) => e.message);
    assert.is(right.includes('10.95.0.'), false, right);
    assert.ok(entries().some((e) => e.includes(` addrs=${addrs} `)), 'its entry is still there');
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await srv.stop();
  }
});

test('mkmacvlan -N: refused for a namespace another uid owns, the server\'s own, an fd that is not a network namespace, and without PEERUID; a step failing after the link exists deletes it and its entry; nothing made', async () => {
  const c = conf('10.97.0.0/24\n');
  const k = await client();
  const ns = openSync(`/proc/${k.proc.pid}/ns/net`, 'r');
  const none = () => entries().filter((e) => e.includes('10.97.0.'));
  try {
    assertNetnsRefusals('mkmacvlan', ns, (fd, env) => withNs(fd, ['-c', c, '-N', '5', 'sh', '-c', 'echo EXECUTED'], env));
    const stray = run(['mkmacvlan', '-c', c, '--any-netns', 'true']);
    assert.is(failsWith(stray, 'mkmacvlan', 100, /--any-netns: only with -N/), null, stray.stderr);
    assert.equal(none(), []);
    // The client's namespace already has a default route: adding ours fails after the link exists.
    const pre = inside(k.proc.pid!, 'ip link add z0 type veth peer name z1 && ip link set z0 up && ip route add default dev z0 && ip route');
    assert.match(pre.stdout, /default dev z0/, pre.stderr);
    const r = withNs(ns, ['-c', c, '-N', '5', 'sh', '-c', 'echo EXECUTED']);
    assert.is(failsWith(r, 'mkmacvlan', 111, /add route default via 10\.97\.0\.1.*EEXIST/), null, r.stderr);
    assert.is(r.stdout, '');
    const left = inside(k.proc.pid!, 'ip -o link show').stdout;
    assert.is(left.includes('eth0'), false, left);
    assert.equal(none(), [], 'its entry went with it');
  } finally {
    closeSync(ns);
    k.proc.kill('SIGKILL');
  }
});

test.after(() => {
  sh('ip link del mp0; ip link del mr0');
  cleanup();
});

test.run();
