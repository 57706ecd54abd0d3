// Rootless podman 4.3 (Debian's, network_backend "cni") with netgrant-cni,
// as a real unprivileged user with subuids runs it: the plugin runs inside
// podman's rootless user and network namespaces (uid 0 there, host /run
// hidden) and sends the container's namespace to the administrator's
// services at /run/user/UID/: mkveth --cni -N (kind veth: eth0 with a pool
// address that pings the host, the lease keyed by the attachment; a second
// container gets the other; podman rm's DEL frees it, a third container
// gets it) and mkmacvlan --cni -N (kind macvlan on the administrator's
// parent, reached by a peer on its LAN).
//
// The user (uid 64999, "ngcni") exists only in the test's private mount
// namespace: /etc/passwd, group, subuid and subgid are bind-mounted copies
// with its entries, /dev/net/tun a 0666 node of the test's own (slirp4netns
// needs one it can open), /run and /var/lib/cni tmpfs. The user's processes
// (podman's pause process, slirp4netns) are killed by pid at the end.
//
// @netgrant-test-modes: in-process
// podman execs netgrant-cni itself, so the chaining mode does not matter;
// one mode keeps the file's podman runs in the CI budget.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, run, sh, tempDir, until } from '../../../tools/test/lib/harness.js';
import { as, gone } from '../../../tools/test/lib/launcher-attacks.js';
import { confMaker } from '../../../tools/test/lib/launcher.js';
import { startServer } from '../../../tools/test/lib/service.js';
import { hostEnds, settled } from '../../../tools/test/lib/veth.js';
import { busyboxRootfsTar } from '../../../tools/test/lib/busybox-rootfs.js';
import { serviceChain } from '../../../tools/test/lib/cni-rootless.js';

const U = 64999;
const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const conf = confMaker(dir);
const home = join(dir, 'home');
const xdg = `/run/user/${U}`;
sh('ip addr add 192.0.2.1/32 dev lo');
sh('mount -t tmpfs -o mode=0755 netgrant-test /run && mkdir -p /run/netns && mkdir -p /var/lib/cni && mount -t tmpfs -o mode=0700 netgrant-test /var/lib/cni');
sh(`mkdir -p -m 0755 /run/user && mkdir -m 0700 ${xdg} && chown ${U}:${U} ${xdg}`);
const extra: Record<string, string> = { passwd: `ngcni:x:${U}:${U}::${home}:/bin/sh\n`, group: `ngcni:x:${U}:\n`, subuid: 'ngcni:300000:65536\n', subgid: 'ngcni:300000:65536\n' };
for (const [f, line] of Object.entries(extra)) {
  const copy = join(dir, f);
  writeFileSync(copy, (existsSync(`/etc/${f}`) ? readFileSync(`/etc/${f}`, 'utf8') : '') + line);
  chmodSync(copy, 0o644);
  assert.is(sh(`mount --bind ${copy} /etc/${f}`).status, 0, `/etc/${f} exists to bind over`);
}
assert.is(sh(`mknod ${dir}/tun c 10 200 && chmod 666 ${dir}/tun && mount --bind ${dir}/tun /dev/net/tun`).status, 0);

const netd = join(home, '.config', 'cni', 'net.d');
const plugins = join(dir, 'cni-bin');
mkdirSync(netd, { recursive: true });
mkdirSync(plugins);
symlinkSync(join(BIN, 'netgrant-cni'), join(plugins, 'netgrant-cni'));
const vsock = `${xdg}/netgrant-cni.sock`;
const msock = `${xdg}/netgrant-cni-macvlan.sock`;
// The user's conflists only ask: kind veth at the default socket, kind macvlan at another.
writeFileSync(join(netd, 'ngnet.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'ngnet', plugins: [{ type: 'netgrant-cni', kind: 'veth' }] }));
writeFileSync(join(netd, 'ngmac.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'ngmac', plugins: [{ type: 'netgrant-cni', kind: 'macvlan', socket: msock }] }));
writeFileSync(join(dir, 'containers.conf'), `[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nruntime = "runc"\n[network]\nnetwork_backend = "cni"\nnetwork_config_dir = "${netd}"\ncni_plugin_dirs = ["${plugins}", "/usr/lib/cni"]\n`);
writeFileSync(join(dir, 'storage.conf'), `[storage]\ndriver = "vfs"\ngraphroot = "${home}/storage"\nrunroot = "${xdg}/containers"\n`);
for (const f of ['containers.conf', 'storage.conf']) chmodSync(join(dir, f), 0o644);
const image = busyboxRootfsTar(dir);
sh(`chown -R ${U}:${U} ${home}`);

const env = { HOME: home, USER: 'ngcni', XDG_RUNTIME_DIR: xdg, CONTAINERS_CONF: join(dir, 'containers.conf'), CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf') };
const podman = (...args: string[]) => run([...as(U), 'podman', ...args], { env, timeout: 120000 });
const runArgs = ['run', '-d', '--cap-add', 'NET_RAW'];
const addressOf = (name: string, re: RegExp) => re.exec(podman('exec', name, 'ip', '-4', '-o', 'addr', 'show', 'eth0').stdout)?.[1];

/** The user's service (docs/netgrant-cni.8.md): the creator's --cni keys the lease by the attachment and serves DEL (podman rm), CHECK, GC, STATUS. */
const service = (path: string, creator: string[], answer: string[]) => serviceChain(path, [U], creator, answer);

/** The test user's processes (podman's pause process, slirp4netns), by pid. */
function userProcesses(): number[] {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      return statSync(`/proc/${p}`).uid === U;
    } catch {
      return false;
    }
  }).map(Number);
}

test('rootless podman: kind veth through the mkveth --cni -N service (address, ping, the attachment key, a second container, rm frees: a third gets the address) and kind macvlan through the mkmacvlan --cni -N service (reached on the LAN)', async () => {
  const vpool = conf('limit 2\n10.67.0.0/30\n');
  const vsrv = await startServer(service(vsock, ['mkveth', '-c', vpool], ['NETHOSTIF']), vsock);
  chmodSync(vsock, 0o777);
  // The macvlan's parent mp0 holds the pool's subnet; its peer end is the LAN, in a namespace with a host on it.
  const peer = spawn('unshare', ['-n', 'sleep', '300'], { stdio: 'ignore' });
  await until(() => sh(`[ "$(readlink /proc/${peer.pid}/ns/net)" != "$(readlink /proc/self/ns/net)" ]`).status === 0, 5000);
  sh(`ip link add mp0 type veth peer name mp1 && ip addr add 10.52.0.1/24 dev mp0 && ip link set mp0 up && ip link set mp1 netns ${peer.pid}`);
  run(['nsenter', '-n', '-t', String(peer.pid), 'sh', '-c', 'ip addr add 10.52.0.250/24 dev mp1 && ip link set mp1 up']);
  const mpool = conf('10.52.0.0/24\n');
  const msrv = await startServer(service(msock, ['mkmacvlan', '-c', mpool], []), msock);
  chmodSync(msock, 0o777);
  try {
    let p = podman('import', '-q', image, 'localhost/bb:latest');
    assert.is(p.status, 0, p.stderr);
    p = podman(...runArgs, '--name', 'c1', '--network', 'ngnet', 'localhost/bb', 'sleep', '300');
    assert.is(p.status, 0, p.stderr + vsrv.output());
    const a1 = addressOf('c1', /inet (10\.67\.0\.[12])\/32 /);
    assert.ok(a1, 'c1 has a pool address on eth0');
    p = podman('exec', 'c1', 'ping', '-c', '1', '-W', '5', '192.0.2.1');
    assert.is(p.status, 0, p.stdout + p.stderr);
    const id1 = podman('inspect', '-f', '{{.Id}}', 'c1').stdout.trim();
    assert.equal(hostEnds().map((h) => [h.record?.uid, h.record?.addrs, h.record?.cni]), [[U, [`${a1}/32`], `ngnet/${id1}/eth0`]], 'the lease is the user\'s (SO_PEERCRED), though the plugin ran as uid 0 in podman\'s namespace, keyed by the attachment');
    p = podman(...runArgs, '--name', 'c2', '--network', 'ngnet', 'localhost/bb', 'sleep', '300');
    assert.is(p.status, 0, p.stderr + vsrv.output());
    const a2 = addressOf('c2', /inet (10\.67\.0\.[12])\/32 /);
    assert.ok(a2 && a2 !== a1, `c2 has the other address (${a2}, c1 ${a1})`);
    p = podman('rm', '-f', '-t', '0', 'c1');
    assert.is(p.status, 0, p.stderr);
    assert.ok(await vsrv.waitForOutput(new RegExp(`DEL for uid ${U}: deleted ngnet/${id1}/eth0`)), vsrv.output());
    assert.ok(await until(() => hostEnds().length === 1, 10000), 'c1\'s lease ended (podman rm\'s DEL)');
    assert.equal(hostEnds().map((h) => h.record?.addrs), [[`${a2}/32`]]);
    // The address is free: a third container gets it (the pool has two).
    p = podman(...runArgs, '--name', 'c3', '--network', 'ngnet', 'localhost/bb', 'sleep', '300');
    assert.is(p.status, 0, p.stderr + vsrv.output());
    assert.is(addressOf('c3', /inet (10\.67\.0\.[12])\/32 /), a1, 'c3 has c1\'s address');

    p = podman(...runArgs, '--name', 'm1', '--network', 'ngmac', 'localhost/bb', 'sleep', '300');
    assert.is(p.status, 0, p.stderr + msrv.output());
    const m = addressOf('m1', /inet (10\.52\.0\.\d+)\/24 /);
    assert.ok(m, 'm1 has a LAN address on eth0');
    // (busybox's ip shows no link kind; the plugin refuses an answer whose link is not a macvlan, and only the macvlan service hands out 10.52.0.0/24.)
    assert.is(run(['nsenter', '-n', '-t', String(peer.pid), 'ping', '-c', '1', '-W', '5', m!]).status, 0, 'a peer on the LAN reaches the rootless container');
  } finally {
    podman('rm', '-a', '-f', '-t', '0');
    podman('system', 'reset', '-f');
    for (const pid of userProcesses()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    peer.kill('SIGKILL');
    await gone(peer);
    await vsrv.stop();
    await msrv.stop();
    sh('ip link del mp0');
  }
  assert.ok(await until(() => userProcesses().length === 0, 10000), 'no process of the test user left');
  assert.is(await settled(), null);
  sh('umount /dev/net/tun; for f in passwd group subuid subgid; do umount /etc/$f; done; umount /run; umount /var/lib/cni');
  cleanup();
});

test.run();
