// The example services `npm run install-prefix` ships (PREFIX/share/netgrant),
// as installed, under a real s6-svscan in a scan directory of the test's:
// each service starts, signals readiness through its notification-fd
// (s6-svwait -U), serves a client; killed by pid, s6-supervise restarts it
// and it serves again; `s6-svc -d` stops it cleanly. Only the env/ files an
// administrator is meant to edit are changed. The systemd units pass
// `systemd-analyze verify`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, readFileSync, readdirSync, writeFileSync, mkdirSync, cpSync } from 'node:fs';
import { join } from 'node:path';
import { run, sh, tempDir, until, BASE_ENV, ROOT, NOBODY, NODE, PYTHON } from '../tools/test/lib/harness.js';
import { startServer } from '../tools/test/lib/service.js';

const { dir, cleanup } = tempDir('netgrant-services-');
chmodSync(dir, 0o755);
const prefix = join(dir, 'prefix');
const installed = run([NODE, join(ROOT, 'tools', 'install', 'install.mjs'), prefix]);
if (installed.status !== 0) throw new Error(`install-prefix failed: ${installed.stderr}`);
const share = join(prefix, 'share', 'netgrant');
const PATH = `${prefix}/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/execline/bin`;
const env = { ...BASE_ENV, PATH };
const AS_NOBODY = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];
const scan = join(dir, 'scan');
mkdirSync(scan);

sh('ip link add br-sv type bridge && ip addr add 10.41.0.1/24 dev br-sv && ip link set br-sv up');
sh('ip link add lp0 type veth peer name lp1 && ip addr add 10.42.0.1/24 dev lp0 && ip link set lp0 up && ip link set lp1 up');

/** Copy a shipped service directory into the scan directory, with some env/ files set. */
function addService(name: string, settings: Record<string, string>) {
  cpSync(join(share, 's6', name), join(scan, name), { recursive: true });
  for (const [k, v] of Object.entries(settings)) {
    assert.ok(existsSync(join(scan, name, 'env', k)), `${name} ships env/${k}`);
    writeFileSync(join(scan, name, 'env', k), `${v}\n`);
  }
}
const rootFile = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  chmodSync(p, 0o644);
  return p;
};

const tapSock = join(dir, 'tap.sock');
addService('netgrant-tap', { SOCKET: tapSock, GROUP: String(NOBODY), BRIDGE: 'br-sv', MAXPERUSER: '2' });
// The bridge-helper service keeps its shipped socket, the helper's compiled-in default (the runner gives this file its own /run/netgrant).
addService('netgrant-bridge-helper', { ACL: rootFile('bridge.conf', 'allow br-sv\n') });
const launchSock = join(dir, 'macvlan.sock');
addService('netgrant-macvlan', { SOCKET: launchSock, GROUP: String(NOBODY), CONFIG: rootFile('macvlan.conf', '10.42.0.0/24\n') });
addService('netgrant-reap', {});
const SERVICES = ['netgrant-tap', 'netgrant-bridge-helper', 'netgrant-macvlan', 'netgrant-reap'];

const svscan = spawn('s6-svscan', ['-t0', scan], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
let log = '';
svscan.stdout!.on('data', (d) => (log += d));
svscan.stderr!.on('data', (d) => (log += d));
const svscanGone = new Promise<void>((r) => svscan.on('close', () => r()));

const svc = (name: string) => join(scan, name);
const seen = new Set<number>();
const pidOf = (name: string) => {
  const pid = Number(run(['s6-svstat', '-o', 'pid', svc(name)], { env }).stdout.trim());
  if (pid > 0) seen.add(pid);
  return pid;
};
const alive = (pid: number) => pid > 0 && existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
const ready = async (name: string) => {
  // s6-svwait needs the service's s6-supervise running (s6-svok), which s6-svscan starts on its first scan.
  assert.ok(await until(() => run(['s6-svok', svc(name)], { env }).status === 0, 10000), `s6-supervise runs for ${name}: ${log}`);
  return run(['s6-svwait', '-U', '-t', '20000', svc(name)], { env, timeout: 30000 });
};

/** A tap from the tap service, as nobody: its name and what fd 3 is. */
const tapClient = () => run([...AS_NOBODY, 's6-ipcclient', tapSock, 'fd-recv', '-s', '6', '-d', '3', '-e', 'TAPNAME', 'sh', '-c', 'echo $TAPNAME; readlink /proc/self/fd/3; ip -o link show $TAPNAME'], { env });

// QEMU's side of the bridge helper protocol, with no environment at all: the helper finds the service by its default.
const DRIVER = join(ROOT, 'tools', 'test', 'lib', 'qemu-helper.py');
const helperClient = () => run([...AS_NOBODY, PYTHON, DRIVER, join(prefix, 'bin', 'netgrant-bridge-helper'), 'br-sv', '--no-env'], { env });
const launchClient = () => run([...AS_NOBODY, 's6-sudo', launchSock, 'sh', '-c', 'id -u; ip -4 -o addr show eth0 | cut -d" " -f7; grep CapEff /proc/self/status'], { env });

const CLIENTS: Record<string, () => void> = {
  'netgrant-tap': () => {
    const r = tapClient();
    assert.is(r.status, 0, r.stderr + log);
    assert.match(r.stdout, /^(tap\d+)\n\/dev\/net\/tun\n\d+: \1: .* master br-sv /);
  },
  'netgrant-bridge-helper': () => {
    const r = helperClient();
    assert.is(r.status, 0, r.stdout + r.stderr + log);
    assert.match(r.stdout, /^tap tap\d+ master br-sv\n$/);
  },
  'netgrant-macvlan': () => {
    const r = launchClient();
    assert.is(r.status, 0, r.stdout + r.stderr + log);
    assert.match(r.stdout, /^65534\n10\.42\.0\.\d+\/24\nCapEff:\s+0+\n$/);
  },
  'netgrant-reap': () => {
    assert.ok(alive(pidOf('netgrant-reap')));
  },
};

for (const name of SERVICES) {
  test(`${name}: starts under s6-svscan, signals readiness (notification-fd), serves a client`, async () => {
    assert.is(readFileSync(join(svc(name), 'notification-fd'), 'utf8'), '3\n');
    const r = await ready(name);
    assert.is(r.status, 0, `s6-svwait -U: ${r.stderr}${log}`);
    CLIENTS[name]!();
  });
}

test('the per-user limits are set: s6-ipcserver -C, mktap --max-per-peer', async () => {
  const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  const tap = cmdline(pidOf('netgrant-tap'));
  assert.ok(tap[0]!.endsWith('/s6-ipcserverd'), tap[0]);
  assert.ok(tap.join(' ').includes('-C 2 '), tap.join(' '));
  assert.ok(tap.join(' ').includes('--max-per-peer 2 '), tap.join(' '));
  // Two taps held by nobody: the third is refused while they live.
  const holders = [0, 1].map(() => spawn(AS_NOBODY[0]!, [...AS_NOBODY.slice(1), 's6-ipcclient', tapSock, 'fd-recv', '-s', '6', '-d', '3', 'sleep', '30'], { env, stdio: 'ignore' }));
  try {
    const count = () => (JSON.parse(run(['ip', '-j', 'link', 'show', 'type', 'tun']).stdout || '[]') as unknown[]).length;
    assert.ok(await until(() => count() === 2, 10000), 'two taps held');
    const third = tapClient();
    assert.is.not(third.status, 0, 'a third tap for the same user is refused');
  } finally {
    for (const h of holders) h.kill('SIGKILL');
  }
  const count = () => (JSON.parse(run(['ip', '-j', 'link', 'show', 'type', 'tun']).stdout || '[]') as unknown[]).length;
  assert.ok(await until(() => count() === 0, 10000), 'the taps went with their holders');
  assert.ok(cmdline(pidOf('netgrant-macvlan')).join(' ').includes('-C 4 '));
  assert.match(cmdline(pidOf('netgrant-bridge-helper')).join(' '), /netgrant-serve -1 -c 64 -C 4 .* --max-per-peer 4 /);
});

for (const name of ['netgrant-tap', 'netgrant-bridge-helper', 'netgrant-macvlan']) {
  test(`${name}: killed by pid, s6-supervise restarts it and it serves again`, async () => {
    const old = pidOf(name);
    assert.ok(alive(old));
    process.kill(old, 'SIGKILL');
    assert.ok(await until(() => { const p = pidOf(name); return p > 0 && p !== old; }, 15000), `restarted: ${log}`);
    const r = await ready(name);
    assert.is(r.status, 0, r.stderr);
    assert.ok(!alive(old));
    CLIENTS[name]!();
  });
}

for (const name of SERVICES) {
  test(`${name}: s6-svc -d stops it cleanly`, async () => {
    const pid = pidOf(name);
    assert.is(run(['s6-svc', '-d', svc(name)], { env }).status, 0);
    const r = run(['s6-svwait', '-D', '-t', '10000', svc(name)], { env, timeout: 20000 });
    assert.is(r.status, 0, r.stderr);
    assert.ok(await until(() => !alive(pid), 5000), 'the server is gone');
    const st = run(['s6-svstat', '-o', 'up,wantedup', svc(name)], { env }).stdout.trim();
    assert.is(st, 'false false', st);
    if (name === 'netgrant-tap') assert.is.not(tapClient().status, 0, 'no one serves the socket');
  });
}

test('netgrant-ipvlan (not run here: this kernel has no ipvlan) is netgrant-macvlan with mkipvlan', () => {
  const read = (kind: string, f: string) => readFileSync(join(share, 's6', `netgrant-${kind}`, f), 'utf8');
  for (const f of ['run', 'notification-fd', 'type', 'env/SOCKET', 'env/CONFIG', 'env/GROUP', 'env/MAXPERUSER']) {
    assert.is(read('ipvlan', f), read('macvlan', f).replaceAll('macvlan', 'ipvlan'), f);
  }
  for (const u of ['.socket', '.service']) {
    const unit = (kind: string) => readFileSync(join(share, 'systemd', `netgrant-${kind}${u}`), 'utf8');
    assert.is(unit('ipvlan'), unit('macvlan').replaceAll('macvlan', 'ipvlan'), u);
  }
});

test('systemd: every shipped unit passes systemd-analyze verify', () => {
  const units = readdirSync(join(share, 'systemd')).sort();
  assert.equal(units.filter((u) => u.endsWith('.socket')).map((u) => u.replace(/\.socket$/, '')), ['netgrant-bridge-helper', 'netgrant-ipvlan', 'netgrant-macvlan', 'netgrant-tap']);
  const manEnv = { PATH, MANPATH: join(prefix, 'share', 'man'), SYSTEMD_LOG_LEVEL: 'notice' };
  const r = run(['systemd-analyze', 'verify', ...units.map((u) => join(share, 'systemd', u))], { env: manEnv, timeout: 120000 });
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.is(r.stdout + r.stderr, '', 'no warning either');
  // The check is real: a unit whose program is missing fails it.
  const bad = join(dir, 'sd');
  mkdirSync(bad);
  for (const u of ['netgrant-tap.socket', 'netgrant-tap.service']) copyFileSync(join(share, 'systemd', u), join(bad, u));
  writeFileSync(join(bad, 'netgrant-tap.service'), readFileSync(join(bad, 'netgrant-tap.service'), 'utf8').replace(`ExecStart=${prefix}/bin/`, 'ExecStart=/nonexistent/'));
  const failed = run(['systemd-analyze', 'verify', join(bad, 'netgrant-tap.socket'), join(bad, 'netgrant-tap.service')], { env: manEnv, timeout: 60000 });
  assert.is.not(failed.status, 0);
  assert.match(failed.stderr, /\/nonexistent\/netgrant-serve is not executable/);
});

// The units as written, run by systemd-socket-activate (systemd is not PID 1 here): the .socket's
// ListenStream and SocketMode, the .service's ExecStart word for word (Accept=yes: one instance per
// connection on fds 0 and 1, --inetd; StandardInput=socket with Accept=no: the listening socket on
// fd 0, as systemd gives it, instead of fd 3). What they name in /etc (groups kvm and netusers,
// /etc/qemu/bridge.conf, /etc/netgrant/macvlan.conf) comes from an overlay on /etc in the server's
// own mount namespace; the launcher's config is bind-mounted from the programs' filesystem, which
// mkmacvlan requires.
const KVM = 64990;
const NETUSERS = 64991;
const unitFile = (u: string) => readFileSync(join(share, 'systemd', u), 'utf8');
const unitKey = (text: string, key: string) => text.match(new RegExp(`^${key}=(.*)$`, 'm'))?.[1];
async function activate(base: string) {
  const socket = unitFile(`${base}.socket`);
  const accept = unitKey(socket, 'Accept') === 'yes';
  const service = unitFile(accept ? `${base}@.service` : `${base}.service`);
  const listen = unitKey(socket, 'ListenStream')!;
  let exec = unitKey(service, 'ExecStart')!.split(/\s+/);
  if (!accept && unitKey(service, 'StandardInput') === 'socket') exec = ['sh', '-c', 'exec "$@" <&3 3<&-', 'sh', ...exec];
  const ov = join(dir, `ov-${base}`);
  mkdirSync(ov, { recursive: true });
  const launchConf = rootFile(`${base}-launch.conf`, '10.42.0.0/24\n');
  const setup = [
    'mount --make-rprivate /',
    `mount -t tmpfs none ${ov}`,
    `mkdir -p ${ov}/u/qemu ${ov}/u/netgrant ${ov}/w`,
    `cp /etc/group ${ov}/u/group`,
    `echo kvm:x:${KVM}: >> ${ov}/u/group`,
    `echo netusers:x:${NETUSERS}: >> ${ov}/u/group`,
    `echo 'allow br0' > ${ov}/u/qemu/bridge.conf`,
    `: > ${ov}/u/netgrant/macvlan.conf`,
    `mount -t overlay overlay -o lowerdir=/etc,upperdir=${ov}/u,workdir=${ov}/w /etc`,
    `mount --bind ${launchConf} /etc/netgrant/macvlan.conf`,
    `rm -f ${listen}`,
    'exec "$@"',
  ].join(' && ');
  const srv = await startServer(['unshare', '--mount', 'sh', '-c', setup, 'sh', 'systemd-socket-activate', ...(accept ? ['--accept', '--inetd'] : []), '-l', listen, ...exec], listen, env);
  chmodSync(listen, Number.parseInt(unitKey(socket, 'SocketMode') ?? '0666', 8));
  return srv;
}
const inGroup = (gid: number) => ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, `--groups=${gid}`];

test('systemd: the units run as written (systemd-socket-activate) and serve', async () => {
  sh('ip link add br0 type bridge && ip link set br0 up');
  try {
    const tap = await activate('netgrant-tap');
    try {
      const r = run([...inGroup(KVM), 's6-ipcclient', '/run/netgrant/tap-br0.sock', 'fd-recv', '-s', '6', '-d', '3', '-e', 'TAPNAME', 'sh', '-c', 'ip -o link show $TAPNAME'], { env });
      assert.is(r.status, 0, r.stderr + tap.output());
      assert.match(r.stdout, /^\d+: tap\d+: .* master br0 /);
      const outsider = run([...AS_NOBODY, 's6-ipcclient', '/run/netgrant/tap-br0.sock', 'fd-recv', '-s', '6', '-d', '3', 'true'], { env });
      assert.is.not(outsider.status, 0, 'not in kvm: refused');
    } finally {
      await tap.stop();
    }
    const helper = await activate('netgrant-bridge-helper');
    try {
      const r = run([...AS_NOBODY, PYTHON, DRIVER, join(prefix, 'bin', 'netgrant-bridge-helper'), 'br0', '--no-env'], { env });
      assert.is(r.status, 0, r.stdout + r.stderr + helper.output());
      assert.match(r.stdout, /^tap tap\d+ master br0\n$/);
      assert.is(run([...AS_NOBODY, PYTHON, DRIVER, join(prefix, 'bin', 'netgrant-bridge-helper'), 'br-sv', '--no-env'], { env }).status, 1, 'bridge.conf allows br0 only');
    } finally {
      await helper.stop();
    }
    const launcher = await activate('netgrant-macvlan');
    try {
      const r = run([...inGroup(NETUSERS), 's6-sudo', '/run/netgrant/macvlan.sock', 'sh', '-c', 'id -u; ip -4 -o addr show eth0 | cut -d" " -f7; grep CapEff /proc/self/status'], { env });
      assert.is(r.status, 0, r.stdout + r.stderr + launcher.output());
      assert.match(r.stdout, /^65534\n10\.42\.0\.\d+\/24\nCapEff:\s+0+\n$/);
      // The per-user limit (s6-ipcserverd -C 4): uid 65534 holds four launches, a fifth is
      // refused at once, and another member of netusers is still served.
      const held = Array.from({ length: 4 }, () => {
        const p = spawn(inGroup(NETUSERS)[0]!, [...inGroup(NETUSERS).slice(1), 's6-sudo', '/run/netgrant/macvlan.sock', 'sh', '-c', 'echo up; read x'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
        let out = '';
        p.stdout!.on('data', (d) => (out += d));
        return { p, up: () => out.includes('up') };
      });
      try {
        assert.ok(await until(() => held.every((h) => h.up()), 30000), 'four launches held');
        const t0 = Date.now();
        const fifth = run([...inGroup(NETUSERS), 's6-sudo', '/run/netgrant/macvlan.sock', 'true'], { env, timeout: 20000 });
        assert.is.not(fifth.status, 0, 'a fifth launch of the same uid is refused');
        assert.ok(Date.now() - t0 < 10000, `refused, not queued (${Date.now() - t0} ms)`);
        const other = run(['setpriv', '--reuid=65533', '--regid=65533', `--groups=${NETUSERS}`, 's6-sudo', '/run/netgrant/macvlan.sock', 'id', '-u'], { env, timeout: 30000 });
        assert.is(other.status, 0, other.stderr + launcher.output());
        assert.is(other.stdout, '65533\n');
      } finally {
        for (const h of held) h.p.stdin!.end();
        await until(() => held.every((h) => h.p.exitCode !== null || h.p.signalCode !== null), 20000);
        for (const h of held) if (h.p.exitCode === null && h.p.signalCode === null) h.p.kill('SIGKILL');
      }
      // Stalling: four connections of uid 65534 that never send a request take its four slots
      // only until s6-sudod's -t 5000 drops them; then it is served again.
      const stalled = Array.from({ length: 4 }, () => spawn('setpriv', [...inGroup(NETUSERS).slice(1), 's6-ipcclient', '/run/netgrant/macvlan.sock', 'sleep', '60'], { env, stdio: 'ignore' }));
      try {
        await new Promise((r) => setTimeout(r, 1000));
        assert.is.not(run([...inGroup(NETUSERS), 's6-sudo', '/run/netgrant/macvlan.sock', 'true'], { env, timeout: 20000 }).status, 0, 'the stalled connections hold the slots');
        const t0 = Date.now();
        let again = false;
        while (!again && Date.now() - t0 < 15000) {
          again = run([...inGroup(NETUSERS), 's6-sudo', '/run/netgrant/macvlan.sock', 'true'], { env, timeout: 20000 }).status === 0;
          if (!again) await new Promise((r) => setTimeout(r, 500));
        }
        assert.ok(again, 'served again once s6-sudod dropped the stalled connections');
      } finally {
        for (const p of stalled) p.kill('SIGKILL');
      }
    } finally {
      await launcher.stop();
    }
  } finally {
    sh('ip link del br0');
  }
});

test.after(async () => {
  // s6-svscanctl -t: every service down, every s6-supervise gone, then s6-svscan exits; by pid after that.
  run(['s6-svscanctl', '-t', scan], { env });
  const t = setTimeout(() => {
    try {
      process.kill(-svscan.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  }, 10000);
  await svscanGone;
  clearTimeout(t);
  // Services are session leaders of their own (s6-supervise): any still there is ended by its pid.
  for (const pid of seen) if (alive(pid)) process.kill(pid, 'SIGKILL');
  cleanup();
});
test.run();
