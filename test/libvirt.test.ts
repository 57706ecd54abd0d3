// libvirt for real (docs/recipes.md, the libvirt sections): Debian's
// libvirtd in session mode (qemu:///session) as uid 65534, with a home and
// XDG directories of its own, inside the test's network namespace; real
// domains boot the ping guest (kernel + initrd, TCG) and ping the bridge.
//   (a) <interface type='ethernet'> on a 2-queue tap mktap made for the user
//       (managed='no', <driver queues='2'>);
//   (b) <interface type='bridge'> with netgrant-bridge-helper set as the
//       user's bridge_helper in ~/.config/libvirt/qemu.conf. libvirt runs
//       the helper with an environment of its own making, so the helper
//       finds the service at its compiled-in default socket.
// /dev/net/tun must be openable by the user for (a); this machine's is
// 0600, so the test gives its own mount namespace a 0666 node (Debian's
// udev default).
//
// @netgrant-test-modes: in-process
// In one chaining mode only (docs/testing.md): libvirt's use of a tap and of
// the bridge helper; the helper's chain is run both ways by
// packages/netgrant-bridge-helper/test/helper.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, sh, tempDir, until, ROOT, NOBODY, NODE } from '../tools/test/lib/harness.js';
import { startServer } from '../tools/test/lib/service.js';
// @ts-expect-error plain ES module of the test tools
import { pingGuest, pingAppend } from '../tools/guest/ping-guest.mjs';

const { dir, cleanup } = tempDir('netgrant-libvirt-');
chmodSync(dir, 0o755);
const guest = pingGuest() as { kernel: string; initrd: string };
const prefix = join(dir, 'prefix');
const installed = run([NODE, join(ROOT, 'tools', 'install', 'install.mjs'), prefix]);
if (installed.status !== 0) throw new Error(`install-prefix failed: ${installed.stderr}`);
const PATH = `${prefix}/bin:/usr/sbin:/usr/bin:/sbin:/bin`;

sh('mount -t tmpfs -o mode=0755 netgrant-test /dev/net && mknod -m 0666 /dev/net/tun c 10 200');
sh('ip link add br-lv type bridge && ip addr add 10.43.0.1/24 dev br-lv && ip link set br-lv up');

// The user's home: ~/.config/libvirt/qemu.conf, XDG runtime dir for the daemon's socket.
const home = join(dir, 'home');
const xdg = { HOME: home, XDG_RUNTIME_DIR: join(home, 'run'), XDG_CONFIG_HOME: join(home, '.config'), XDG_CACHE_HOME: join(home, '.cache'), USER: 'nobody', LOGNAME: 'nobody' };
for (const d of [home, xdg.XDG_RUNTIME_DIR, join(xdg.XDG_CONFIG_HOME, 'libvirt'), xdg.XDG_CACHE_HOME]) {
  mkdirSync(d, { recursive: true, mode: 0o700 });
  chownSync(d, NOBODY, NOBODY);
}
chownSync(xdg.XDG_CONFIG_HOME, NOBODY, NOBODY);
const qemuConf = join(xdg.XDG_CONFIG_HOME, 'libvirt', 'qemu.conf');
writeFileSync(qemuConf, `# netgrant's helper instead of the setuid qemu-bridge-helper (docs/recipes.md)\nbridge_helper = "${prefix}/bin/netgrant-bridge-helper"\n`);
chownSync(qemuConf, NOBODY, NOBODY);

const AS_NOBODY = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];
// The user's environment has a NETGRANT_BRIDGE_SOCKET that leads nowhere. virsh autostarts the
// session daemon, as it does for any user, and the autostarted daemon's environment is cleared:
// the variable never reaches the helper, and (b) works only through the helper's default.
const userEnv = { ...xdg, PATH, NETGRANT_BRIDGE_SOCKET: join(dir, 'not-the-service.sock') };
const virsh = (...args: string[]) => run([...AS_NOBODY, 'virsh', '-q', '-c', 'qemu:///session', ...args], { env: userEnv, timeout: 120000 });
const daemonPidFile = join(xdg.XDG_RUNTIME_DIR, 'libvirt', 'libvirtd.pid');
let daemonPid = 0;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const taps = () => JSON.parse(run(['ip', '-j', 'link', 'show', 'type', 'tun']).stdout || '[]') as { ifname: string }[];
const qemuPids = new Set<number>();

function domainXml(name: string, addr: string, iface: string) {
  return `<domain type='qemu'>
  <name>${name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${guest.kernel}</kernel>
    <initrd>${guest.initrd}</initrd>
    <cmdline>${pingAppend(addr, '10.43.0.1')}</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    ${iface}
    <serial type='file'><source path='${home}/${name}.console'/><target port='0'/></serial>
  </devices>
</domain>
`;
}

/** Boot a transient domain; its serial console once the guest has reported (or the boot timed out), and the domain gone. */
async function boot(name: string, addr: string, iface: string, whileUp?: () => void): Promise<string> {
  const xml = join(home, `${name}.xml`);
  writeFileSync(xml, domainXml(name, addr, iface));
  chownSync(xml, NOBODY, NOBODY);
  const t0 = Date.now();
  const c = virsh('create', xml);
  assert.is(c.status, 0, `virsh create: ${c.stdout}${c.stderr}\n${qemuLog(name)}`);
  const pidFile = join(xdg.XDG_RUNTIME_DIR, 'libvirt', 'qemu', 'run', `${name}.pid`);
  if (existsSync(pidFile)) qemuPids.add(Number(readFileSync(pidFile, 'utf8').trim()));
  whileUp?.();
  const consoleFile = join(home, `${name}.console`);
  const console_ = () => (existsSync(consoleFile) ? readFileSync(consoleFile, 'utf8') : '');
  await until(() => /NETGRANT-GUEST ping=\w+/.test(console_()), 180000);
  const t1 = Date.now();
  // on_poweroff=destroy: the transient domain goes when the guest powers off (ACPI), else it is destroyed.
  if (!(await until(() => !virsh('list', '--name').stdout.includes(name), 10000))) virsh('destroy', name);
  console.log(`  ${name}: virsh create ${((t1 - t0) / 1000).toFixed(1)} s to the guest's report, gone ${((Date.now() - t1) / 1000).toFixed(1)} s later`);
  return console_();
}
const qemuLog = (name: string) => {
  const f = join(xdg.XDG_CACHE_HOME, 'libvirt', 'qemu', 'log', `${name}.log`);
  return existsSync(f) ? readFileSync(f, 'utf8').slice(-3000) : '(no qemu log)';
};

test('virsh autostarts libvirtd in session mode as uid 65534, in the test namespace, with a cleared environment', async () => {
  const u = virsh('uri');
  assert.is(u.status, 0, u.stderr);
  assert.is(u.stdout.trim(), 'qemu:///session');
  assert.ok(await until(() => existsSync(daemonPidFile), 10000), 'the session daemon wrote its pid file');
  daemonPid = Number(readFileSync(daemonPidFile, 'utf8').trim());
  assert.is(readFileSync(`/proc/${daemonPid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)![1], String(NOBODY));
  assert.match(readFileSync(`/proc/${daemonPid}/cmdline`, 'utf8'), /libvirtd\0--timeout=\d+\0/);
  assert.is(readlinkSync(`/proc/${daemonPid}/ns/net`), readlinkSync('/proc/self/ns/net'), "in this test's network namespace");
  const environ = readFileSync(`/proc/${daemonPid}/environ`, 'utf8').split('\0');
  assert.ok(!environ.some((e) => e.startsWith('NETGRANT_BRIDGE_SOCKET=')), `the autostarted daemon's environment is cleared: ${environ.join(' ')}`);
});

test("(a) <interface type='ethernet'> on a 2-queue tap mktap made for the user (managed='no', <driver queues='2'>)", async () => {
  const m = run(['mktap', '-n', 'lvtap0', '-q', '2', '--vnet-hdr', '--persist', '-o', String(NOBODY), '-b', 'br-lv'], { env: { PATH } });
  assert.is(m.status, 0, m.stderr);
  try {
    const iface = `<interface type='ethernet'>
      <target dev='lvtap0' managed='no'/>
      <model type='virtio'/>
      <driver queues='2'/>
    </interface>`;
    const out = await boot('ng-a', '10.43.0.2/24', iface);
    assert.match(out, /NETGRANT-GUEST ping=ok queues=2/, `${out.slice(-2000)}\n${qemuLog('ng-a')}`);
    // Without <driver queues='2'> libvirt opens the multiqueue tap single-queue, which the kernel refuses: nothing boots.
    const xml = join(home, 'ng-a1.xml');
    writeFileSync(xml, domainXml('ng-a1', '10.43.0.4/24', iface.replace("<driver queues='2'/>", '')));
    chownSync(xml, NOBODY, NOBODY);
    const single = virsh('create', xml);
    assert.is.not(single.status, 0, 'a multiqueue tap without <driver queues>');
    assert.match(single.stderr, /lvtap0/);
    console.log(`  without <driver queues='2'>: ${single.stderr.trim().split('\n').slice(-1)[0]}`);
    // libvirt did not create or delete it (managed='no'): the administrator's tap is still there, still the user's.
    const info = JSON.parse(run(['ip', '-j', '-d', 'link', 'show', 'lvtap0']).stdout) as { linkinfo: { info_data: { user?: number | string; multi_queue?: boolean } } }[];
    assert.ok(['nobody', String(NOBODY)].includes(String(info[0]!.linkinfo.info_data.user)), JSON.stringify(info[0]!.linkinfo));
  } finally {
    run(['ip', 'link', 'del', 'lvtap0']);
  }
});

test("(b) <interface type='bridge'> with bridge_helper = netgrant-bridge-helper in the user's qemu.conf", async () => {
  const conf = join(dir, 'bridge.conf');
  writeFileSync(conf, 'allow br-lv\n');
  chmodSync(conf, 0o644);
  // The service at the helper's compiled-in default (the runner gives this file a /run/netgrant of its own).
  const sock = '/run/netgrant/qemu-bridge.sock';
  const s = await startServer(['netgrant-serve', sock, 'peer-check', '-a', 'fd-recv', '-s', '0', '-m', '0', '-t', '5000', '-e', 'REQBRIDGE,REQVNETHDR',
    'bridge-acl', '-c', conf, 'mktap', '--bridge-from-acl', '--vnet-hdr', '-R', '--owner-from-peer', '--max-per-peer', '4', 'fd-send', '-s', '1', '-d', '3'], sock, { PATH });
  try {
    let during: { ifname: string; master?: string; linkinfo?: unknown }[] = [];
    const iface = `<interface type='bridge'>
      <source bridge='br-lv'/>
      <model type='virtio'/>
    </interface>`;
    const out = await boot('ng-b', '10.43.0.3/24', iface, () => {
      during = JSON.parse(run(['ip', '-j', 'link', 'show', 'type', 'tun']).stdout || '[]');
    });
    assert.match(out, /NETGRANT-GUEST ping=ok/, `${out.slice(-2000)}\n${qemuLog('ng-b')}\n${s.output()}`);
    assert.is(during.length, 1, 'one tap while the domain ran');
    assert.is(during[0]!.master, 'br-lv');
    // The tap was the domain's lease: gone with QEMU.
    assert.ok(await until(() => taps().length === 0, 10000), `no tap left: ${JSON.stringify(taps())}`);
  } finally {
    await s.stop();
  }
});

test.after(async () => {
  virsh('destroy', 'ng-a');
  virsh('destroy', 'ng-a1');
  virsh('destroy', 'ng-b');
  if (!daemonPid && existsSync(daemonPidFile)) daemonPid = Number(readFileSync(daemonPidFile, 'utf8').trim());
  const alive = (pid: number) => pid > 0 && existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (daemonPid) {
    try {
      process.kill(daemonPid, 'SIGTERM');
    } catch {
      /* gone */
    }
    if (!(await until(() => !alive(daemonPid), 5000))) process.kill(daemonPid, 'SIGKILL');
  }
  for (const pid of qemuPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  // libvirtd started virtlogd for the domains' consoles: it goes too, by the pid it wrote.
  const logPidFile = join(xdg.XDG_RUNTIME_DIR, 'libvirt', 'virtlogd.pid');
  const logPid = existsSync(logPidFile) ? Number(readFileSync(logPidFile, 'utf8').trim()) : 0;
  if (alive(logPid) && /virtlogd/.test(readFileSync(`/proc/${logPid}/cmdline`, 'utf8'))) {
    process.kill(logPid, 'SIGTERM');
    if (!(await until(() => !alive(logPid), 5000))) process.kill(logPid, 'SIGKILL');
  }
  await sleep(100);
  run(['umount', '/dev/net']);
  cleanup();
});
test.run();
