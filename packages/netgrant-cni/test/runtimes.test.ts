// Rootful podman 4.3 and containerd 1.6 (Debian's) with a netgrant-cni
// network. Podman (network_backend "cni") with a netgrant-cni
// network, run as a user runs it: `podman run --network ngnet` gets eth0
// with a pool address and pings the host side; a second container gets the
// other address; `podman rm` frees it for a third. A macvlan network with
// Debian's host-local as its IPAM: `podman run --rm` gets a macvlan eth0
// with host-local's address, and podman's DEL releases both. A 1.1.0 conflist, which
// Debian 12's libcni (1.0.0) cannot take a result of, fails the run and
// leaves nothing. The busybox image is built offline (podman import of a
// busybox-static rootfs). Podman's storage, run and tmp dirs, its
// containers.conf and its network directory are the test's own; libcni's
// cache (/var/lib/cni) is a tmpfs of the test's mount namespace; the
// containers' namespaces are made from the test's network namespace, where
// the host ends go. containerd (`ctr run --cni`, which reads only
// /etc/cni/net.d and the plugins in /usr/lib/cni) runs with its own root,
// state, socket and configuration, started and stopped by the test by pid;
// /run (containerd's shims and runc use /run/containerd whatever its
// --state), /etc/cni/net.d and /usr/lib/cni are the test's own there:
// tmpfs and bind mounts in the test's private mount namespace.
//
// @netgrant-test-modes: in-process
// podman and containerd exec netgrant-cni themselves, so the chaining mode does not matter
// here; one mode keeps the file's seconds of podman runs in the CI budget.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { BIN, run, sh, tempDir, until } from '../../../tools/test/lib/harness.js';
import { gone } from '../../../tools/test/lib/launcher-attacks.js';
import { confMaker } from '../../../tools/test/lib/launcher.js';
import { hostEnds, settled } from '../../../tools/test/lib/veth.js';
import { busyboxRootfsTar } from '../../../tools/test/lib/busybox-rootfs.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const conf = confMaker(dir);
const pool = conf('10.66.0.0/30\n');
const pool11 = conf('10.65.0.0/30\n');
sh('ip addr add 192.0.2.1/32 dev lo');
// libcni's result cache and /run: the test's own.
sh('mkdir -p /var/lib/cni && mount -t tmpfs -o mode=0700 netgrant-test /var/lib/cni');
sh('mount -t tmpfs -o mode=0755 netgrant-test /run && mkdir -p /run/netns');

const netd = join(dir, 'net.d');
const plugins = join(dir, 'cni-bin');
for (const d of [netd, plugins, join(dir, 'R'), join(dir, 'tmp')]) mkdirSync(d, { recursive: true });
symlinkSync(join(BIN, 'netgrant-cni'), join(plugins, 'netgrant-cni'));
// ctr's own CNI setup runs loopback too.
copyFileSync('/usr/lib/cni/loopback', join(plugins, 'loopback'));
chmodSync(join(plugins, 'loopback'), 0o755);
const conflist = (name: string, cniVersion: string, config: string) =>
  writeFileSync(join(netd, `${name}.conflist`), JSON.stringify({ cniVersion, name, plugins: [{ type: 'netgrant-cni', kind: 'veth', config }] }));
conflist('ngnet', '1.0.0', pool);
conflist('ng11', '1.1.0', pool11);
// A macvlan network on the parent cm0 (a veth), its address from Debian's host-local.
sh('ip link add cm0 type veth peer name cm1 && ip link set cm0 up && ip link set cm1 up');
const ipamDir = join(dir, 'ipam');
writeFileSync(join(netd, 'ngmac.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'ngmac', plugins: [{ type: 'netgrant-cni', kind: 'macvlan', master: 'cm0', config: conf('10.67.0.0/24 parent cm0\n'),
  ipam: { type: 'host-local', dataDir: ipamDir, ranges: [[{ subnet: '10.67.0.0/24', gateway: '10.67.0.1' }]], routes: [{ dst: '0.0.0.0/0' }] } }] }));
writeFileSync(join(dir, 'containers.conf'), `[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nruntime = "runc"\n[network]\nnetwork_backend = "cni"\nnetwork_config_dir = "${netd}"\ncni_plugin_dirs = ["${plugins}", "/usr/lib/cni"]\n`);
writeFileSync(join(dir, 'storage.conf'), `[storage]\ndriver = "vfs"\ngraphroot = "${dir}/root"\nrunroot = "${dir}/run"\n`);
const env = { CONTAINERS_CONF: join(dir, 'containers.conf'), CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf') };
const podman = (...args: string[]) => run(['podman', '--root', `${dir}/root`, '--runroot', `${dir}/run`, '--tmpdir', `${dir}/tmp`, ...args], { env, timeout: 120000 });
// Root lacks CAP_SYS_RESOURCE here: podman's default rootful ulimits exceed the hard limits (notes/cni-rootless.md §8).
const runArgs = ['run', '-d', '--cap-add', 'NET_RAW', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];

/** A busybox image from busybox-static, offline. */
function importImage(): void {
  const i = podman('import', '-q', busyboxRootfsTar(dir), 'localhost/bb:latest');
  assert.is(i.status, 0, i.stderr);
}

const addressOf = (name: string) => /inet (10\.66\.0\.[12])\/32 /.exec(podman('exec', name, 'ip', '-4', '-o', 'addr', 'show', 'eth0').stdout)?.[1];

test('rootful podman: run --network ngnet gets eth0 with a pool address and pings the host; a second container gets the other; podman rm frees it for a third; a 1.1.0 conflist fails and leaves nothing', async () => {
  try {
    importImage();
    let r = podman(...runArgs, '--name', 'c1', '--network', 'ngnet', 'localhost/bb', 'sleep', '300');
    assert.is(r.status, 0, r.stderr);
    const id1 = r.stdout.trim();
    const a1 = addressOf('c1');
    assert.ok(a1, 'c1 has a pool address on eth0');
    r = podman('exec', 'c1', 'ping', '-c', '1', '-W', '5', '192.0.2.1');
    assert.is(r.status, 0, r.stdout + r.stderr);
    assert.is(run(['ping', '-c', '1', '-W', '5', a1!]).status, 0, 'the host reaches c1');
    assert.equal(hostEnds().map((h) => [h.record?.cni, h.record?.addrs]), [[`ngnet/${id1}/eth0`, [`${a1}/32`]]], 'the lease is keyed by podman\'s container id');

    r = podman(...runArgs, '--name', 'c2', '--network', 'ngnet', 'localhost/bb', 'sleep', '300');
    assert.is(r.status, 0, r.stderr);
    const a2 = addressOf('c2');
    assert.ok(a2 && a2 !== a1, `c2 has the other address (${a2}, c1 ${a1})`);

    // The pool is full: podman reports the plugin's error and sends DEL; nothing is left of the attempt.
    r = podman(...runArgs, '--name', 'c3', '--network', 'ngnet', 'localhost/bb', 'sleep', '300');
    assert.is.not(r.status, 0);
    assert.ok(/type="netgrant-cni" failed \(add\).*no free address/.test(r.stderr), r.stderr);
    podman('rm', '-f', '-t', '0', 'c3');

    r = podman('rm', '-f', '-t', '0', 'c1');
    assert.is(r.status, 0, r.stderr);
    assert.equal(hostEnds().map((h) => h.record?.addrs), [[`${a2}/32`]], 'c1\'s lease is gone');
    r = podman(...runArgs, '--name', 'c3', '--network', 'ngnet', 'localhost/bb', 'sleep', '300');
    assert.is(r.status, 0, r.stderr);
    assert.is(addressOf('c3'), a1, 'c1\'s address is free again');

    // A macvlan network with delegated IPAM: eth0 a macvlan with host-local's address; podman's DEL at exit ends the attachment and releases the address.
    r = podman('run', '--rm', ...runArgs.slice(2), '--network', 'ngmac', 'localhost/bb', 'sh', '-c', 'ip -o link show eth0; ip -4 -o addr show eth0; ip route show default');
    assert.is(r.status, 0, r.stdout + r.stderr);
    const cm0 = sh('ip -o link show cm0 | cut -d: -f1').stdout.trim();
    assert.match(r.stdout, new RegExp(`^\\d+: eth0@if${cm0}: `, 'm'), `a link of cm0 (ifindex ${cm0}): ${r.stdout}`);
    assert.match(r.stdout, /inet 10\.67\.0\.2\/24 /);
    assert.match(r.stdout, /default via 10\.67\.0\.1 dev eth0/);
    assert.equal(readdirSync(join(ipamDir, 'ngmac')).filter((n) => n.startsWith('10.')), [], 'host-local\'s address is released');
    assert.equal(readdirSync('/run/netgrant/launched').filter((n) => readFileSync(`/run/netgrant/launched/${n}`, 'latin1').includes('cni=ngmac/') && !readFileSync(`/run/netgrant/launched/${n}`, 'latin1').includes(' gone=')), []);

    // A 1.1.0 conflist: this plugin's VERSION lists 1.1.0, so libcni 1.1.2 loads it, then refuses the 1.1.0 result; podman's DEL cleans up.
    r = podman(...runArgs, '--name', 'c4', '--network', 'ng11', 'localhost/bb', 'sleep', '300');
    assert.is.not(r.status, 0);
    assert.ok(/1\.1\.0/.test(r.stderr), r.stderr);
    assert.is(hostEnds().length, 2, r.stderr);
  } finally {
    podman('rm', '-a', '-f', '-t', '0');
  }
  assert.is(await settled(), null);
});

test('containerd: ctr run --cni with a netgrant conflist gets eth0 with a pool address and pings the host; the lease ends with the task (DEL with CNI_NETNS="")', async () => {
  const ctd = join(dir, 'ctd');
  const sock = join(ctd, 'ctd.sock');
  mkdirSync(ctd);
  writeFileSync(join(ctd, 'config.toml'), `version = 2\nroot = "${ctd}/root"\nstate = "${ctd}/state"\ndisabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt", "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]\n[grpc]\n  address = "${sock}"\n`);
  // ctr loads only the lexically first file of /etc/cni/net.d, and takes the plugins from /opt/cni/bin and /usr/lib/cni.
  const ctdNet = join(ctd, 'net.d');
  mkdirSync(ctdNet);
  writeFileSync(join(ctdNet, '10-ngnet.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'ngnet', plugins: [{ type: 'netgrant-cni', kind: 'veth', config: pool }] }));
  assert.is(sh(`mkdir -p /etc/cni/net.d && mount --bind ${ctdNet} /etc/cni/net.d && mount --bind ${plugins} /usr/lib/cni`).status, 0);
  const ctr = (...args: string[]) => run(['ctr', '-a', sock, ...args], { timeout: 120000 });
  const daemon = spawn('containerd', ['-c', join(ctd, 'config.toml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  daemon.stderr!.on('data', (b: Buffer) => (log += b.toString()));
  try {
    assert.ok(await until(() => ctr('version').status === 0, 30000), log);
    let r = podman('save', '-q', '--format', 'oci-archive', '-o', join(dir, 'bb.tar'), 'localhost/bb:latest');
    assert.is(r.status, 0, r.stderr);
    r = ctr('image', 'import', '--base-name', 'localhost/bb', join(dir, 'bb.tar'));
    assert.is(r.status, 0, r.stderr);
    r = ctr('run', '--rm', '--cni', 'localhost/bb:latest', 't1', 'sh', '-c', 'ip -4 -o addr show eth0; ping -c 1 -W 5 192.0.2.1 >/dev/null && echo pinged');
    assert.is(r.status, 0, r.stdout + r.stderr + log);
    assert.match(r.stdout, /inet 10\.66\.0\.[12]\/32 /);
    assert.match(r.stdout, /pinged/);
    assert.is(await settled(), null, 'the lease ended with the task');
    // The DEL after the task (CNI_NETNS="") found nothing left, and said so without an error: containerd logs none.
    assert.not.match(log, /netgrant-cni/);
  } finally {
    daemon.kill('SIGTERM');
    await gone(daemon);
    podman('system', 'reset', '-f');
    sh('umount /usr/lib/cni; umount /etc/cni/net.d');
  }
  sh('umount /run; umount /var/lib/cni; ip link del cm0');
  cleanup();
});

test.run();
