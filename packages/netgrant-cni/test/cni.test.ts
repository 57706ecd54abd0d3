// netgrant-cni rootful, kind veth, run as a container runtime runs it
// (CNI_* variables, the network configuration on stdin, the result or the
// error JSON on stdout): ADD into a container's namespace (a process's
// /proc/PID/ns/net, as containerd passes it), CHECK, DEL (idempotent,
// without CNI_NETNS or prevResult), GC by the still-valid attachments,
// VERSION and STATUS, the bad inputs, and Debian's ptp + host-local as the
// oracle for the result's shape.
//
// @netgrant-test-modes: in-process
// netgrant-cni ends every chain (a runtime execs it, it execs nothing), so
// both modes run the same code; the service chains' modes are mkveth's and
// mkmacvlan's own -N files'.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, sh, tempDir, NOBODY } from '../../../tools/test/lib/harness.js';
import { confMaker } from '../../../tools/test/lib/launcher.js';
import { as, gone } from '../../../tools/test/lib/launcher-attacks.js';
import { hostEnds, settled } from '../../../tools/test/lib/veth.js';
import { attach, cni, container, failed, shape, type Json } from '../../../tools/test/lib/cni.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const conf = confMaker(dir);
const pool = conf('limit 8\n10.77.0.0/29\n');
/** Two addresses: the lifecycle test fills it. */
const pair = conf('10.76.0.0/30\n');
// The host's own address (on lo of the test's namespace): what containers ping, and the host's source towards them.
sh('ip addr add 192.0.2.1/32 dev lo');

const net = (extra: Json = {}): Json => ({ cniVersion: '1.0.0', name: 'ngnet', type: 'netgrant-cni', kind: 'veth', config: pool, ...extra });

test('VERSION lists 0.3.0-1.1.0 and echoes the asked version', () => {
  const r = cni({ CNI_COMMAND: 'VERSION', CNI_NETNS: 'dummy', CNI_IFNAME: 'dummy', CNI_PATH: 'dummy' }, { cniVersion: '1.0.0' });
  assert.is(r.status, 0, r.stderr);
  assert.equal(r.out, { cniVersion: '1.0.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
  assert.is(cni({ CNI_COMMAND: 'VERSION' }, '').out!.cniVersion, '1.1.0');
});

test('ADD, CHECK, DEL: eth0 in the container with a pool address the host reaches, a record keyed by the attachment; a second container gets another address; DEL is idempotent (no CNI_NETNS, no prevResult); nothing left', async () => {
  const a = await container();
  const b = await container();
  try {
    const add = cni(attach('ADD', 'c0ffee01', a.netns), net({ config: pair }));
    assert.is(add.status, 0, add.stderr + add.stdout);
    const res = add.out!;
    assert.is(res.cniVersion, '1.0.0');
    assert.is(res.interfaces.length, 2);
    assert.is(res.interfaces[1].name, 'eth0');
    assert.is(res.interfaces[1].sandbox, a.netns);
    assert.is(res.interfaces[0].sandbox, undefined);
    for (const i of res.interfaces) assert.match(i.mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    assert.is(res.ips.length, 1);
    assert.match(res.ips[0].address, /^10\.76\.0\.[12]\/32$/);
    assert.equal([res.ips[0].gateway, res.ips[0].interface, res.ips[0].version], ['169.254.1.1', 1, undefined]);
    assert.equal(res.routes, [{ dst: '0.0.0.0/0', gw: '169.254.1.1' }]);
    const addr = res.ips[0].address.split('/')[0];
    assert.match(a.inside('ip -o -4 addr show eth0').stdout, new RegExp(` ${addr.replace(/\./g, '\\.')}/32 `));
    assert.match(a.inside('ip -o link show eth0').stdout, new RegExp(`link/ether ${res.interfaces[1].mac} `), 'the MAC is eth0\'s (read over netlink: sysfs shows the mounter\'s namespace)');
    assert.is(run(['ping', '-c', '1', '-W', '5', addr]).status, 0, 'the host reaches the container');
    assert.equal(hostEnds().map((h) => [h.name, h.record?.cni, h.record?.addrs]), [[res.interfaces[0].name, 'ngnet/c0ffee01/eth0', [res.ips[0].address]]]);

    // The same attachment again is refused; the same container id on another ifname is another attachment.
    failed(cni(attach('ADD', 'c0ffee01', b.netns), net({ config: pair })), 100, /attachment ngnet\/c0ffee01\/eth0.*File exists/);
    const second = cni(attach('ADD', 'c0ffee02', b.netns), net({ config: pair, cniVersion: '0.4.0' }));
    assert.is(second.status, 0, second.stderr);
    assert.is(second.out!.cniVersion, '0.4.0');
    assert.is(second.out!.ips[0].version, '4', '0.4.0 results carry ips[].version');
    assert.is.not(second.out!.ips[0].address, res.ips[0].address);
    failed(cni(attach('ADD', 'c0ffee04', b.netns, 'eth1'), net({ config: pair })), 100, /no free address/);

    // CHECK: as added; then the container's root removes the address, and CHECK says so.
    const check = cni(attach('CHECK', 'c0ffee01', a.netns), net({ config: pair, prevResult: res }));
    assert.is(check.status, 0, check.stdout + check.stderr);
    assert.is(check.stdout, '');
    failed(cni(attach('CHECK', 'c0ffee09', a.netns), net({ config: pair, prevResult: res })), 3, /no such attachment/);
    a.inside(`ip addr del ${res.ips[0].address} dev eth0`);
    failed(cni(attach('CHECK', 'c0ffee01', a.netns), net({ config: pair, prevResult: res })), 100, /eth0 lacks its addresses/);

    // DEL with prevResult, again without CNI_NETNS (containerd) and without prevResult: both succeed; the other container keeps its interface.
    const del = cni(attach('DEL', 'c0ffee01', a.netns), net({ config: pair, prevResult: res }));
    assert.is(del.status, 0, del.stdout + del.stderr);
    assert.is(del.stdout, '');
    assert.is(a.inside('ip link show eth0 2>&1').status, 1, 'eth0 is gone from the container');
    const again = cni({ ...attach('DEL', 'c0ffee01', ''), CNI_NETNS: '' }, net({ config: pair }));
    assert.is(again.status, 0, again.stdout + again.stderr);
    assert.is(cni({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c0ffee01', CNI_IFNAME: 'eth0' }, net({ config: pair })).status, 0);
    assert.equal(hostEnds().map((h) => h.record?.cni), ['ngnet/c0ffee02/eth0']);
    // The pool is full until then; the first address is free again.
    const re = cni(attach('ADD', 'c0ffee03', a.netns), net({ config: pair }));
    assert.is(re.status, 0, re.stderr);
    assert.is(re.out!.ips[0].address, res.ips[0].address);
    // The container's namespace going (its last process ends) takes its pair; DEL afterwards succeeds.
    a.proc.kill('SIGKILL');
    await gone(a.proc);
    b.proc.kill('SIGKILL');
    await gone(b.proc);
    assert.is(await settled(), null);
    assert.is(cni(attach('DEL', 'c0ffee03', a.netns), net({ config: pair })).status, 0, 'DEL after the namespace is gone');
  } finally {
    a.proc.kill('SIGKILL');
    b.proc.kill('SIGKILL');
  }
  assert.is(await settled(), null);
});

test('the container\'s root re-addresses eth0: the host end\'s pin drops what it sends from anything but its lease', async () => {
  const a = await container();
  try {
    const add = cni(attach('ADD', 'pin1', a.netns), net());
    assert.is(add.status, 0, add.stderr);
    const addr = add.out!.ips[0].address.split('/')[0];
    const ping = (src: string) => a.inside(`ping -c 1 -W 2 -I ${src} 192.0.2.1 >/dev/null 2>&1 && echo reached || echo dropped`).stdout.trim();
    assert.is(ping(addr), 'reached');
    a.inside('ip addr add 10.77.0.200/32 dev eth0');
    assert.is(ping('10.77.0.200'), 'dropped');
    assert.is(cni(attach('DEL', 'pin1', a.netns), net()).status, 0);
  } finally {
    a.proc.kill('SIGKILL');
    await gone(a.proc);
  }
  assert.is(await settled(), null);
});

test('GC removes this network\'s attachments not in cni.dev/valid-attachments (or cni.dev/attachments), never another network\'s', async () => {
  // One routed attachment per container namespace (its default route is the link-local gateway): four containers.
  const cs = await Promise.all([container(), container(), container(), container()]);
  try {
    const made = [['g1', 'eth0', 'ngnet'], ['g2', 'eth0', 'ngnet'], ['g3', 'eth1', 'ngnet'], ['g1', 'eth0', 'other']] as const;
    made.forEach(([id, ifname, name], i) => {
      const r = cni(attach('ADD', id, cs[i]!.netns, ifname), net({ name }));
      assert.is(r.status, 0, r.stderr);
    });
    const gc = (extra: Json) => cni({ CNI_COMMAND: 'GC', CNI_PATH: '/usr/lib/cni' }, net({ cniVersion: '1.1.0', ...extra }));
    failed(cni({ CNI_COMMAND: 'GC', CNI_PATH: '/usr/lib/cni' }, net()), 1, /GC needs cniVersion 1.1.0/);
    failed(gc({ 'cni.dev/valid-attachments': 'g1' }), 7, /not a list/);
    let r = gc({ 'cni.dev/valid-attachments': [{ containerID: 'g1', ifname: 'eth0' }, { containerID: 'g3', ifname: 'eth1' }, { containerID: '../x', ifname: 'eth0' }] });
    assert.is(r.status, 0, r.stdout + r.stderr);
    assert.equal(hostEnds().map((h) => h.record?.cni).sort(), ['ngnet/g1/eth0', 'ngnet/g3/eth1', 'other/g1/eth0']);
    assert.is(cs[1]!.inside('ip link show eth0 2>&1').status, 1, 'g2\'s eth0 is gone');
    r = gc({ 'cni.dev/attachments': [{ containerID: 'g3', ifname: 'eth1' }] });
    assert.is(r.status, 0, r.stdout + r.stderr);
    assert.equal(hostEnds().map((h) => h.record?.cni).sort(), ['ngnet/g3/eth1', 'other/g1/eth0']);
    assert.is(cs[3]!.inside('ip link show eth0 >/dev/null && echo kept').stdout.trim(), 'kept', 'another network\'s attachment stays');
  } finally {
    for (const c of cs) c.proc.kill('SIGKILL');
    for (const c of cs) await gone(c.proc);
  }
  assert.is(await settled(), null);
});

test('oracle: Debian\'s ptp + host-local, for the same request, returns a result with the same keys', async () => {
  const a = await container();
  const b = await container();
  try {
    const ptp = cni({ ...attach('ADD', 'oracle1', a.netns), CNI_PATH: '/usr/lib/cni' }, {
      cniVersion: '1.0.0', name: 'ptpnet', type: 'ptp',
      ipam: { type: 'host-local', dataDir: join(dir, 'ipam'), ranges: [[{ subnet: '10.78.0.0/24' }]], routes: [{ dst: '0.0.0.0/0', gw: '10.78.0.1' }] },
    }, ['/usr/lib/cni/ptp']);
    assert.is(ptp.status, 0, ptp.stdout + ptp.stderr);
    const ours = cni(attach('ADD', 'oracle2', b.netns), net());
    assert.is(ours.status, 0, ours.stderr);
    assert.equal(shape(ours.out!), shape(ptp.out!), `${ours.stdout}\nvs ptp: ${ptp.stdout}`);
    assert.is(run(['/usr/lib/cni/ptp'], { env: { ...attach('DEL', 'oracle1', a.netns) }, input: Buffer.from(JSON.stringify({ cniVersion: '1.0.0', name: 'ptpnet', type: 'ptp', ipam: { type: 'host-local', dataDir: join(dir, 'ipam'), ranges: [[{ subnet: '10.78.0.0/24' }]] } })) }).status, 0);
    assert.is(cni(attach('DEL', 'oracle2', b.netns), net()).status, 0);
  } finally {
    a.proc.kill('SIGKILL');
    b.proc.kill('SIGKILL');
    await gone(a.proc);
    await gone(b.proc);
  }
  assert.is(await settled(), null);
});

test('bad input: malformed JSON, missing variables, an unknown kind, a netns path that is not a netns, odd container ids, versions; error JSON with the spec\'s code, nothing made', async () => {
  const a = await container();
  try {
    const add = (env: Record<string, string>, stdin: string | Json = net()) => cni({ ...attach('ADD', 'bad1', a.netns), ...env }, stdin);
    failed(add({}, '{"cniVersion": "1.0.0", '), 6, /not JSON/);
    failed(add({}, '[1]'), 6, /not a JSON object/);
    failed(cni({}, net()), 4, /CNI_COMMAND is not set/);
    failed(cni({ CNI_COMMAND: 'ATTACH' }, net()), 4, /unknown command: ATTACH/);
    failed(cni({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'x' }, net()), 4, /CNI_NETNS, CNI_IFNAME not set/);
    failed(cni({ CNI_COMMAND: 'DEL', CNI_NETNS: a.netns }, net()), 4, /CNI_CONTAINERID, CNI_IFNAME not set/);
    failed(add({}, net({ kind: 'bridge' })), 7, /kind: unknown: "bridge"/);
    failed(add({}, net({ kind: 7 })), 7, /kind: unknown/);
    failed(add({}, net({ name: '../etc' })), 7, /name: missing or not a network name/);
    failed(add({}, net({ cniVersion: '2.0.0' })), 1, /cniVersion "2\.0\.0" is not supported: supported: 0\.3\.0, 0\.3\.1, 0\.4\.0, 1\.0\.0, 1\.1\.0/);
    failed(add({}, net({ ipam: { type: 'host-local' } })), 2, /ipam: delegated IPAM is for kinds macvlan and ipvlan, rootful; kind veth/);
    failed(add({}, net({ config: join(dir, 'none.conf') })), 7, /none\.conf/);
    const writable = conf('10.79.0.0/24\n', 0o666);
    failed(add({}, net({ config: writable })), 7, /writable/);
    writeFileSync(join(dir, 'plain'), 'x');
    for (const p of ['/dev/null', dir, join(dir, 'plain'), '/proc/self/ns/user', '/proc/self/ns/net', join(dir, 'absent'), 'relative/path']) failed(add({ CNI_NETNS: p }), 4, /CNI_NETNS/);
    for (const id of ['../x', 'a b', '-x', '.x', 'a/b', 'é', 'x;rm', 'a'.repeat(129), 'a\nb']) failed(add({ CNI_CONTAINERID: id }), 4, /CNI_CONTAINERID: not a container id/);
    for (const ifname of ['', 'a'.repeat(16), 'a/b', 'a b', '..']) {
      const r = add({ CNI_IFNAME: ifname });
      failed(r, 4, ifname === '' ? /CNI_IFNAME not set/ : /CNI_IFNAME/);
    }
    failed(cni({ CNI_COMMAND: 'STATUS' }, net()), 1, /STATUS needs cniVersion 1\.1\.0/);
    failed(cni({ CNI_COMMAND: 'STATUS' }, net({ cniVersion: '1.1.0', config: join(dir, 'none.conf') })), 50, /the pool cannot be read/);
    assert.is(cni({ CNI_COMMAND: 'STATUS' }, net({ cniVersion: '1.1.0' })).status, 0);
    // A 1.1.0 configuration gets a 1.1.0 result (what a 1.0.0 runtime, Debian 12's libcni, refuses: docs/netgrant-cni.8.md).
    const v11 = add({}, net({ cniVersion: '1.1.0' }));
    assert.is(v11.status, 0, v11.stderr);
    assert.is(v11.out!.cniVersion, '1.1.0');
    assert.is(cni(attach('DEL', 'bad1', a.netns), net({ cniVersion: '1.1.0' })).status, 0);
    // Not root: a zero-capability user running the plugin gets an error, and nothing is made.
    const nobody = cni(attach('ADD', 'bad2', a.netns), net(), [...as(NOBODY), 'netgrant-cni']);
    assert.is.not(nobody.status, 0);
    assert.ok(nobody.out && nobody.out.code >= 100, nobody.stdout);
    assert.equal(hostEnds(), []);
    assert.is(a.inside('ip -o link show | grep -c eth0').stdout.trim(), '0');
  } finally {
    a.proc.kill('SIGKILL');
    await gone(a.proc);
  }
  assert.is(await settled(), null);
  cleanup();
});

test.run();
