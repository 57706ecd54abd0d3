// netgrant-cni rootful, kind macvlan, run as a container runtime runs it:
// ADD into a container's namespace on the configuration's parent with a
// pool address (mkmacvlan -N's launch), two containers reaching each other
// over the parent, the network's mtu; CHECK; DEL by the attachment's key
// (without CNI_NETNS too, and again); GC by the still-valid attachments.
// Delegated IPAM with Debian's host-local (its dataDir the test's): the
// plugin's address and routes on eth0 and in the result, released by DEL,
// and by a failed ADD (a step failing after the link exists); an ADD killed
// before its entry, cleaned by DEL. Debian's
// macvlan with host-local as the oracle for the result's shape. The bad
// input: master, mode, mtu, ipam, CNI_PATH; nothing made.
//
// @netgrant-test-modes: in-process
// netgrant-cni ends every chain (a runtime execs it, it execs nothing), so
// both modes run the same code; the launch's modes are mkmacvlan's -N files'.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { sh, tempDir, until } from '../../../tools/test/lib/harness.js';
import { confMaker } from '../../../tools/test/lib/launcher.js';
import { attach, cni, container, failed, links, shape, stop, type Cni, type Json } from '../../../tools/test/lib/cni.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const conf = confMaker(dir);
// The parent: cm0 (the host's 10.81.0.1/24), a veth whose peer is up.
sh('ip link add cm0 type veth peer name cm1 && ip addr add 10.81.0.1/24 dev cm0 && ip link set cm0 up && ip link set cm1 up');
const pool = conf('10.81.0.0/24\n');
const ipamPool = conf('10.82.0.0/24 parent cm0\n');
const dataDir = join(dir, 'ipam');

const net = (extra: Json = {}): Json => ({ cniVersion: '1.0.0', name: 'ngmac', type: 'netgrant-cni', kind: 'macvlan', master: 'cm0', mode: 'bridge', config: pool, ...extra });
const hostLocal = (extra: Json = {}): Json => ({ type: 'host-local', dataDir, ranges: [[{ subnet: '10.82.0.0/24', gateway: '10.82.0.1' }]], routes: [{ dst: '0.0.0.0/0' }], ...extra });
const withIpam = (extra: Json = {}): Json => net({ config: ipamPool, ipam: hostLocal(), ...extra });
/** The registry's live entries (a deleted container's stays a tombstone, gone=, for a few seconds). */
const entries = () => readdirSync('/run/netgrant/launched').filter((n) => !n.startsWith('.')).map((n) => readFileSync(`/run/netgrant/launched/${n}`, 'latin1').trim()).filter((e) => !/ gone=/.test(e));
const reserved = () => (existsSync(join(dataDir, 'ngmac')) ? readdirSync(join(dataDir, 'ngmac')).filter((n) => /^[0-9.]+$/.test(n)) : []);

test('ADD, CHECK, DEL, GC: eth0 a macvlan of the parent in the container with a pool address, two containers reach each other, the network\'s mtu; the entry keyed by the attachment; DEL without CNI_NETNS and again; GC ends what is not valid', async () => {
  const a = await container();
  const b = await container();
  try {
    const add = cni(attach('ADD', 'm1', a.netns), net());
    assert.is(add.status, 0, add.stderr + add.stdout);
    const res = add.out!;
    assert.is(res.interfaces.length, 1);
    assert.equal([res.interfaces[0].name, res.interfaces[0].sandbox], ['eth0', a.netns]);
    assert.match(a.inside('ip -o link show eth0').stdout, new RegExp(`link/ether ${res.interfaces[0].mac} `));
    assert.match(a.inside('ip -d -o link show eth0').stdout, /macvlan mode bridge/);
    assert.match(res.ips[0].address, /^10\.81\.0\.\d+\/24$/);
    assert.equal([res.ips[0].gateway, res.ips[0].interface], ['10.81.0.1', 0]);
    assert.equal(res.routes, [{ dst: '0.0.0.0/0', gw: '10.81.0.1' }]);
    assert.match(a.inside('ip route show default').stdout, /default via 10\.81\.0\.1 dev eth0/);
    const second = cni(attach('ADD', 'm2', b.netns), net({ mtu: 1400 }));
    assert.is(second.status, 0, second.stderr + second.stdout);
    assert.match(b.inside('ip -o link show eth0').stdout, / mtu 1400 /);
    const bAddr = second.out!.ips[0].address.split('/')[0];
    assert.is.not(second.out!.ips[0].address, res.ips[0].address);
    assert.is(a.inside(`ping -c 1 -W 5 ${bAddr} >/dev/null && echo ok`).stdout.trim(), 'ok', 'the containers reach each other over the parent');
    assert.ok(entries().some((e) => e.includes(' cni=ngmac/m1/eth0') && e.includes(` addrs=${res.ips[0].address} `) && / client=1 /.test(e)), entries().join('\n'));
    // The same attachment again, a second one in the same namespace: refused, nothing more made.
    failed(cni(attach('ADD', 'm1', a.netns), net()), 100, /attachment ngmac\/m1\/eth0: .*it has an interface already/);
    failed(cni(attach('ADD', 'm4', b.netns, 'eth1'), net()), 101, /that namespace already has a launched interface/);
    assert.is(links(b), 'eth0 lo');

    // CHECK: as added; in another namespace; once the container's root has removed the address.
    const check = cni(attach('CHECK', 'm1', a.netns), net({ prevResult: res }));
    assert.is(check.status, 0, check.stdout + check.stderr);
    failed(cni(attach('CHECK', 'm1', b.netns), net({ prevResult: res })), 4, /not the attachment's namespace/);
    failed(cni(attach('CHECK', 'm9', a.netns), net()), 3, /no such attachment/);
    a.inside(`ip addr del ${res.ips[0].address} dev eth0`);
    failed(cni(attach('CHECK', 'm1', a.netns), net({ prevResult: res })), 100, /eth0 lacks its addresses/);

    // DEL without CNI_NETNS (containerd's) finds the interface by its key; again; without prevResult.
    const del = cni({ ...attach('DEL', 'm1', ''), CNI_NETNS: '' }, net());
    assert.is(del.status, 0, del.stdout + del.stderr);
    assert.is(links(a), 'lo', 'eth0 is gone from the container');
    assert.is(entries().some((e) => e.includes('cni=ngmac/m1/')), false);
    assert.is(cni(attach('DEL', 'm1', a.netns), net()).status, 0, 'DEL again');
    assert.match(links(b), /eth0/, 'the other container keeps its interface');

    // GC: m3 (a's again) is not valid, m2 is.
    assert.is(cni(attach('ADD', 'm3', a.netns), net()).status, 0);
    const gc = cni({ CNI_COMMAND: 'GC', CNI_PATH: '/usr/lib/cni' }, net({ cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: 'm2', ifname: 'eth0' }] }));
    assert.is(gc.status, 0, gc.stdout + gc.stderr);
    assert.is(links(a), 'lo');
    assert.match(links(b), /eth0/);
    assert.equal(entries().filter((e) => e.includes('cni=')).map((e) => /cni=(\S+)/.exec(e)![1]), ['ngmac/m2/eth0']);
    assert.is(cni({ CNI_COMMAND: 'STATUS' }, net({ cniVersion: '1.1.0' })).status, 0);

    // b's namespace goes without a DEL: its entry becomes a tombstone, whose key is free at once (podman's restart
    // with the same id) but whose address stays held until it expires.
    await stop(b);
    const c = await container();
    let again: Cni | undefined;
    await until(() => (again = cni(attach('ADD', 'm2', c.netns), net())).status === 0, 10000);
    await stop(c);
    assert.is(again!.status, 0, again!.stdout + again!.stderr);
    assert.is.not(again!.out!.ips[0].address, second.out!.ips[0].address, 'the tombstone still holds its address');
  } finally {
    await stop(a, b);
  }
});

test('delegated IPAM (Debian\'s host-local): its address, gateway and routes on eth0 and in the result; CHECK and DEL reach it; a failed ADD (a route the container already has) releases its address and leaves nothing; the oracle: Debian\'s macvlan with host-local has the same result keys', async () => {
  const a = await container();
  const b = await container();
  try {
    const add = cni(attach('ADD', 'i1', a.netns), withIpam());
    assert.is(add.status, 0, add.stderr + add.stdout);
    const res = add.out!;
    assert.equal(res.ips.map((i: Json) => [i.address, i.gateway, i.interface]), [['10.82.0.2/24', '10.82.0.1', 0]]);
    assert.equal(res.routes, [{ dst: '0.0.0.0/0' }], 'the plugin\'s routes, as it gave them');
    assert.match(a.inside('ip -o -4 addr show eth0').stdout, / 10\.82\.0\.2\/24 /);
    assert.match(a.inside('ip route show default').stdout, /default via 10\.82\.0\.1 dev eth0/, 'no gw: the gateway of its family');
    assert.equal(reserved(), ['10.82.0.2']);
    assert.is(readFileSync(join(dataDir, 'ngmac', '10.82.0.2'), 'utf8').split(/\s/)[0], 'i1');
    // The same attachment again: refused before IPAM's ADD, so the DEL after it cannot release i1's address.
    failed(cni(attach('ADD', 'i1', a.netns), withIpam()), 100, /attachment ngmac\/i1\/eth0: it has an interface already/);
    assert.equal(reserved(), ['10.82.0.2']);
    const check = cni(attach('CHECK', 'i1', a.netns), withIpam({ prevResult: res }));
    assert.is(check.status, 0, check.stdout + check.stderr);
    const oracle = cni(attach('ADD', 'o1', b.netns), { cniVersion: '1.0.0', name: 'ngmac', type: 'macvlan', master: 'cm0', mode: 'bridge', ipam: hostLocal() }, ['/usr/lib/cni/macvlan']);
    assert.is(oracle.status, 0, oracle.stdout + oracle.stderr);
    assert.equal(shape(res), shape(oracle.out!), `${add.stdout}\nvs Debian's macvlan: ${oracle.stdout}`);
    assert.is(cni(attach('DEL', 'o1', b.netns), { cniVersion: '1.0.0', name: 'ngmac', type: 'macvlan', master: 'cm0', ipam: hostLocal() }, ['/usr/lib/cni/macvlan']).status, 0);
    const del = cni(attach('DEL', 'i1', a.netns), withIpam());
    assert.is(del.status, 0, del.stdout + del.stderr);
    assert.equal(reserved(), [], 'DEL released the address');
    assert.is(links(a), 'lo');

    // A step failing after the link exists: the container already has a default route.
    b.inside('ip route add blackhole default');
    const bad = cni(attach('ADD', 'i2', b.netns), withIpam());
    failed(bad, 100, /add route default.*EEXIST|File exists/);
    assert.is(links(b), 'lo', 'the macvlan is deleted');
    assert.equal(reserved(), [], 'IPAM DEL after the failed ADD');
    assert.equal(entries(), [], 'no registry entry');
  } finally {
    await stop(a, b);
  }
});

test('bad input: an unknown master, a master or mode the configuration does not allow, an mtu over the parent\'s, ipam type with a slash, an ipam plugin missing or failing, a relative CNI_PATH, IPAM addresses outside the configuration; error JSON, nothing made', async () => {
  const a = await container();
  try {
    const add = (conf: Json, env: Record<string, string> = {}) => cni({ ...attach('ADD', 'b1', a.netns), ...env }, conf);
    failed(add(net({ master: 'nosuch0' })), 7, /master nosuch0: no such interface/);
    failed(add(net({ master: 'cm1' })), 101, /master cm1: not allowed \(the configuration's parent is cm0\)/);
    failed(add(net({ master: '../x' })), 7, /master: not an interface name/);
    failed(add(net({ mode: 'passthru' })), 101, /mode: not allowed by the configuration \(bridge\)/);
    failed(add(net({ mode: 'vepa', config: conf('mode private\n10.81.0.0/24\n') })), 101, /not allowed by the configuration \(private\)/);
    failed(add(net({ mtu: 9000 })), 7, /mtu 9000: over the parent's/);
    failed(add(net({ mtu: '1400' })), 7, /mtu: not a number/);
    failed(add(withIpam({ ipam: hostLocal({ type: '../host-local' }) })), 7, /ipam: type is not a plugin name/);
    failed(add(withIpam({ ipam: hostLocal({ type: 'nosuch-ipam' }) })), 7, /ipam: no plugin nosuch-ipam in CNI_PATH/);
    failed(add(withIpam(), { CNI_PATH: 'usr/lib/cni' }), 4, /CNI_PATH: not an absolute directory/);
    failed(add(withIpam({ ipam: hostLocal({ ranges: 'none' }) })), 999, /ipam: host-local ADD failed: json: cannot unmarshal/);
    failed(add(withIpam({ config: pool })), 101, /address 10\.82\.0\.\d+\/24 \(from IPAM\): not in a subnet of the configuration/);
    failed(add(net({ ipam: hostLocal() }), { CNI_COMMAND: 'ADD' }), 101, /not in a subnet/);
    assert.equal(reserved(), [], 'IPAM released what it gave');
    assert.equal(entries(), []);
    assert.is(links(a), 'lo');

    // An ADD killed between the link and its entry (strace, on the entry's first write): the link is left in the
    // container with no record yet, no entry, no address; the runtime's DEL (with CNI_NETNS) deletes it.
    const ino = (p: string) => /\[(\d+)\]/.exec(readlinkSync(p))![1];
    const entryTmp = `/run/netgrant/launched/.${ino('/proc/self/ns/net')}-n${ino(a.netns)}.new`;
    const killed = cni(attach('ADD', 'k1', a.netns), net(), ['strace', '-qq', '-o', '/dev/null', '-P', entryTmp, '-e', 'trace=openat', '-e', 'inject=openat:signal=KILL:when=1', 'netgrant-cni']);
    assert.is.not(killed.status, 0, killed.stdout);
    const left = a.inside('ip -d -o link show eth0').stdout;
    assert.match(left, /macvlan mode bridge/);
    assert.not.match(left, /alias|inet/);
    assert.equal(entries(), []);
    assert.is(cni(attach('DEL', 'k1', a.netns), net()).status, 0);
    assert.is(links(a), 'lo');
  } finally {
    await stop(a);
  }
  sh('ip link del cm0');
  cleanup();
});

test.run();
