// netgrant-cni rootless, kind veth: the plugin runs as a rootless runtime
// runs it, uid 0 in a user namespace of a real unprivileged user (65534,
// `unshare -Ur`: no power over the host), with the container's namespace
// made in that user namespace. It sends the namespace to the
// administrator's service (s6-ipcserver, peer-check, fd-recv, mkveth -N,
// fd-send), whose chain decides everything: the owner check, the pool, the
// quota, the interface name. Hostile clients forge their requests: another
// uid's container namespace, the host's namespace, another pool or
// interface name in their config; DEL, CHECK and GC naming another uid's
// attachment, metadata written by hand (a forged PEERUID, a bad key, an
// unknown REQOP). The creators' --cni serves DEL, CHECK, GC and STATUS
// from the peer's own records (lease/cni.ts).
// Rootless podman itself runs in rootless-podman.test.ts.
//
// @netgrant-test-modes: in-process
// netgrant-cni ends every chain (a runtime execs it, it execs nothing), so
// both modes run the same code; the service chains' modes are mkveth's and
// mkmacvlan's own -N files'.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { run, sh, tempDir, until, NOBODY } from '../../../tools/test/lib/harness.js';
import { attachment, cniClient, delLaunched, endRootless, inside, rawRequest, serviceChain, type Rootless } from '../../../tools/test/lib/cni-rootless.js';
import { confMaker } from '../../../tools/test/lib/launcher.js';
import { as, gone, OTHER } from '../../../tools/test/lib/launcher-attacks.js';
import { startServer } from '../../../tools/test/lib/service.js';
import { hostEnds, settled } from '../../../tools/test/lib/veth.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const conf = confMaker(dir);
const pool = conf('limit 1\n10.55.0.0/29\n');
const otherPool = conf('10.54.0.0/24\n');
sh('ip addr add 192.0.2.1/32 dev lo');
const sock = join(dir, 'cni.sock');

const { rootlessAdd, plugin } = cniClient(sock);

test('rootless ADD through the service: eth0 in the container with the service\'s pool address, pinged from the host, the lease keyed by the attachment under the peer\'s uid; the quota, a forged pool, another uid\'s or the host\'s namespace, a name the service does not give; CHECK, STATUS, GC and DEL of the caller\'s own attachments only, forged metadata', async () => {
  const srv = await startServer(serviceChain(sock, [NOBODY, OTHER], ['mkveth', '-c', pool], ['NETHOSTIF']), sock);
  chmodSync(sock, 0o777);
  const procs: ChildProcess[] = [];
  const containers: number[] = [];
  const add = async (o: Parameters<typeof rootlessAdd>[0]) => {
    const r = await rootlessAdd(o);
    procs.push(r.proc);
    if (r.container) containers.push(r.container);
    return r;
  };
  const killAll = async () => {
    for (const pid of containers.splice(0)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (const p of procs) p.kill('SIGKILL');
    for (const p of procs) await gone(p);
  };
  try {
    // Its config asks for another pool: the service's is what it gets.
    const a = await add({ id: 'r1', config: { config: otherPool } });
    assert.is(a.status, 0, a.stderr + JSON.stringify(a.out) + srv.output());
    const res = a.out!;
    assert.match(res.ips[0].address, /^10\.55\.0\.[1-6]\/32$/);
    assert.is(res.interfaces[1].name, 'eth0');
    assert.match(res.interfaces[1].mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    assert.match(inside(a.container, 'ip -o link show eth0').stdout, new RegExp(`link/ether ${res.interfaces[1].mac} `));
    const addr = res.ips[0].address.split('/')[0];
    assert.is(run(['ping', '-c', '1', '-W', '5', addr]).status, 0, 'the host reaches the rootless container');
    assert.equal(hostEnds().map((h) => [h.name, h.record?.uid, h.record?.addrs, h.record?.cni]), [[res.interfaces[0].name, NOBODY, [res.ips[0].address], 'ngnet/r1/eth0']]);
    // CHECK (with the ADD's result as prevResult) from the container's user namespace, STATUS: the service answers from the record.
    let p = plugin({ uid: NOBODY, pid: a.container, cmd: 'CHECK', env: attachment('r1', a.container), config: { cniVersion: '1.0.0', kind: 'veth', prevResult: res } });
    assert.is(p.status, 0, p.stdout + p.stderr + srv.output());
    p = plugin({ uid: NOBODY, cmd: 'STATUS' });
    assert.is(p.status, 0, p.stdout + p.stderr);

    // The same uid again: at the service's limit (1).
    const b = await add({ id: 'r2' });
    assert.is.not(b.status, 0);
    assert.is(b.out?.code, 101, JSON.stringify(b.out));
    assert.match(srv.output(), /uid 65534 already has 1 veth namespace, the limit is 1/);
    assert.is(inside(b.container, 'ip -o link show | grep -c eth0').stdout.trim(), '0', 'b: nothing made');

    // Another uid's container namespace (an fd of it, however the client got it), and the host's own: refused by the service.
    const o = spawn(as(OTHER)[0]!, [...as(OTHER).slice(1), 'unshare', '-Urn', 'sleep', '300'], { stdio: 'ignore' });
    procs.push(o);
    await until(() => sh(`[ "$(readlink /proc/${o.pid}/ns/net)" != "$(readlink /proc/self/ns/net)" ]`).status === 0, 5000);
    const theirs = openSync(`/proc/${o.pid}/ns/net`, 'r');
    try {
      const c = await add({ id: 'r3', netns: '/proc/self/fd/3', fd3: theirs });
      assert.is(c.out?.code, 101, JSON.stringify(c.out) + c.stderr);
    } finally {
      closeSync(theirs);
    }
    assert.match(srv.output(), /-N: the network namespace is not owned by uid 65534/);
    const h = await add({ id: 'r4', uid: OTHER, netns: '/proc/self/ns/net' });
    assert.is(h.out?.code, 101, JSON.stringify(h.out) + h.stderr);
    assert.match(srv.output(), /-N: the server's own network namespace|not owned by uid 65533/);

    // A name the service does not give (eth1): refused by the service (--cni: the key names the interface), nothing made.
    const n = await add({ id: 'r5', uid: OTHER, ifname: 'eth1' });
    assert.is(n.out?.code, 101, JSON.stringify(n.out));
    assert.match(srv.output(), /CNI_IFNAME is eth1, this service names the interface eth0/);
    assert.is(hostEnds().length, 1, 'only r1\'s lease is left');

    // A kind the service does not make (its creator is mkveth): the answer is refused, and what the service made goes.
    const k = await add({ id: 'r6', uid: OTHER, config: { kind: 'macvlan' } });
    assert.is(k.out?.code, 100, JSON.stringify(k.out));
    assert.match(k.out!.msg, /the service made a veth, the network asks for macvlan/);
    assert.is(await until(() => hostEnds().length === 1, 10000), true, 'only r1\'s lease is left');
    assert.is(inside(k.container, 'ip -o link show | grep -c eth0').stdout.trim(), '0', 'k: deleted');

    // Another uid naming r1's attachment: CHECK does not see it (3), DEL and GC (an empty valid list) succeed and change nothing of NOBODY's.
    p = plugin({ uid: OTHER, cmd: 'CHECK', env: { ...attachment('r1'), CNI_NETNS: '/proc/self/ns/net' }, config: { cniVersion: '1.0.0' } });
    assert.is(p.out?.code, 3, p.stdout + p.stderr);
    p = plugin({ uid: OTHER, cmd: 'DEL', env: attachment('r1') });
    assert.is(p.status, 0, p.stdout + p.stderr);
    // Its own attachment, under an odd (valid) container id: GC with an empty list collects it, and only it.
    const odd = await add({ id: 'Odd.ID_9-x', uid: OTHER });
    assert.is(odd.status, 0, odd.stderr + JSON.stringify(odd.out) + srv.output());
    assert.equal(hostEnds().map((x) => [x.record?.uid, x.record?.cni]).sort(), [[OTHER, 'ngnet/Odd.ID_9-x/eth0'], [NOBODY, 'ngnet/r1/eth0']]);
    p = plugin({ uid: OTHER, cmd: 'GC', env: { CNI_PATH: '/usr/lib/cni' }, config: { 'cni.dev/valid-attachments': [] } });
    assert.is(p.status, 0, p.stdout + p.stderr);
    assert.equal(hostEnds().map((x) => x.record?.addrs), [[res.ips[0].address]], 'NOBODY\'s lease is left');
    assert.is(run(['ping', '-c', '1', '-W', '5', addr]).status, 0);
    // Metadata by hand: a PEERUID of NOBODY's (fd-recv takes only what -e names), REQOP unknown, a key with a "/".
    assert.match(rawRequest(OTHER, sock, { REQOP: 'DEL', CNI_NETWORK: 'ngnet', CNI_CONTAINERID: 'r1', CNI_IFNAME: 'eth0', PEERUID: String(NOBODY) }), /CNIREPLY=ok/);
    assert.ok(await srv.waitForOutput(/DEL for uid 65533: no ngnet\/r1\/eth0 \(nothing to do\)/), srv.output());
    assert.is(rawRequest(OTHER, sock, { REQOP: 'EVIL', CNI_NETWORK: 'ngnet' }), '');
    assert.ok(await srv.waitForOutput(/REQOP: expected ADD, DEL, CHECK, GC, STATUS, got "EVIL"/), srv.output());
    assert.is(rawRequest(OTHER, sock, { REQOP: 'DEL', CNI_NETWORK: 'ngnet', CNI_CONTAINERID: '../r1', CNI_IFNAME: 'eth0' }), '');
    assert.ok(await srv.waitForOutput(/CNI_CONTAINERID: not a container id "..\/r1"/), srv.output());
    // ADD without a namespace fd: nothing to take, nothing made.
    assert.is(rawRequest(OTHER, sock, { REQOP: 'ADD', CNI_NETWORK: 'ngnet', CNI_CONTAINERID: 'x1', CNI_IFNAME: 'eth0' }), '');
    assert.is(hostEnds().length, 1);
    // The container id's grammar is checked by the plugin too (code 4), before anything is asked.
    p = plugin({ uid: NOBODY, cmd: 'DEL', env: attachment('r1;x') });
    assert.is(p.out?.code, 4, p.stdout);

    // CHECK sees the interface itself: down (its routes gone), it fails.
    inside(a.container, 'ip link set eth0 down');
    p = plugin({ uid: NOBODY, pid: a.container, cmd: 'CHECK', env: attachment('r1', a.container), config: { cniVersion: '1.0.0' } });
    assert.is(p.out?.code, 100, p.stdout);
    assert.match(p.out!.msg, /eth0 is down/);

    // NOBODY's DEL: the pair goes, and its address; repeated, and with the service unreachable, DEL still succeeds.
    p = plugin({ uid: NOBODY, cmd: 'DEL', env: attachment('r1', a.container) });
    assert.is(p.status, 0, p.stdout + p.stderr);
    assert.is(hostEnds().length, 0, p.stderr + srv.output());
    assert.is(inside(a.container, 'ip -o link show | grep -c eth0').stdout.trim(), '0', 'the inside end went with the host end');
    p = plugin({ uid: NOBODY, cmd: 'DEL', env: attachment('r1') });
    assert.is(p.status, 0, p.stdout + p.stderr);
    p = plugin({ uid: NOBODY, cmd: 'DEL', env: attachment('r1'), config: { socket: join(dir, 'none.sock') } });
    assert.is(p.status, 0, p.stdout);
    assert.match(p.stderr, /warning: DEL: the netgrant service cannot be reached/);
    p = plugin({ uid: NOBODY, cmd: 'STATUS', config: { socket: join(dir, 'none.sock') } });
    assert.is(p.out?.code, 50, p.stdout);

    // The container's namespace going ends the lease.
    await killAll();
    assert.is(await settled(), null);
  } finally {
    await killAll();
    await srv.stop();
  }
  assert.is(await settled(), null);
});

test('rootless kind macvlan through a mkmacvlan -N service: eth0 a macvlan on the administrator\'s parent with its pool address, reached by a peer on the parent\'s LAN; no host end in the result', async () => {
  // The parent mp0 holds the pool's subnet; its peer end mp1 is the LAN, in a namespace of its own with a host on it.
  const peer = spawn('unshare', ['-n', 'sleep', '300'], { stdio: 'ignore' });
  await until(() => sh(`[ "$(readlink /proc/${peer.pid}/ns/net)" != "$(readlink /proc/self/ns/net)" ]`).status === 0, 5000);
  sh(`ip link add mp0 type veth peer name mp1 && ip addr add 10.53.0.1/24 dev mp0 && ip link set mp0 up && ip link set mp1 netns ${peer.pid}`);
  inside(peer.pid!, 'ip addr add 10.53.0.250/24 dev mp1 && ip link set mp1 up');
  const mpool = conf('10.53.0.0/24\n');
  const msock = join(dir, 'macvlan.sock');
  const srv = await startServer(serviceChain(msock, [NOBODY], ['mkmacvlan', '-c', mpool], []), msock);
  chmodSync(msock, 0o777);
  let r: Rootless | undefined;
  try {
    r = await rootlessAdd({ id: 'm1', config: { kind: 'macvlan', socket: msock } });
    assert.is(r.status, 0, r.stderr + JSON.stringify(r.out) + srv.output());
    assert.is(r.out!.interfaces.length, 1, 'no host end');
    assert.equal([r.out!.interfaces[0].name, r.out!.interfaces[0].sandbox !== undefined, r.out!.ips[0].interface], ['eth0', true, 0]);
    assert.match(r.out!.ips[0].address, /^10\.53\.0\.\d+\/24$/);
    assert.match(inside(r.container, 'ip -d -o link show eth0').stdout, /macvlan/);
    const addr = r.out!.ips[0].address.split('/')[0];
    assert.is(inside(peer.pid!, `ping -c 1 -W 5 ${addr}`).status, 0, 'a peer on the LAN reaches the rootless container');
    // The key is in the registry's entry (root's), not only in the alias in the client's namespace (the client's to rewrite).
    const entries = sh('cat /run/netgrant/launched/*').stdout;
    assert.match(entries, new RegExp(`uid=${NOBODY} .*addrs=${r.out!.ips[0].address} client=1 cni=ngnet/m1/eth0\n`), entries);
    const cfg = { cniVersion: '1.0.0', kind: 'macvlan', socket: msock };
    let p = plugin({ uid: NOBODY, pid: r.container, cmd: 'CHECK', env: attachment('m1', r.container), config: { ...cfg, prevResult: r.out } });
    assert.is(p.status, 0, p.stdout + p.stderr + srv.output());
    p = plugin({ uid: NOBODY, pid: r.container, cmd: 'CHECK', env: attachment('m2', r.container), config: cfg });
    assert.is(p.out?.code, 3, p.stdout);
    // DEL: the plugin deletes eth0 in the namespace it owns; the entry (and the address) is held until the namespace goes: the client owns the interface.
    await delLaunched(plugin, srv, r, 'm1', cfg);
  } finally {
    await endRootless(r);
    peer.kill('SIGKILL');
    await gone(peer);
    await srv.stop();
    sh('ip link del mp0');
  }
});

test.after(cleanup);
test.run();
