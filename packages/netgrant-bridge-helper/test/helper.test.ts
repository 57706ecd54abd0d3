// netgrant-bridge-helper driven exactly as QEMU drives a bridge helper
// (socketpair, fork/exec with --fd, one byte + SCM_RIGHTS, fd accepted only
// on exit 0), against a netgrant service; Debian's qemu-bridge-helper,
// given the same bridge.conf, is the oracle for the ACL decisions.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync, chmodSync, chownSync } from 'node:fs';
import { join } from 'node:path';
import { run, sh, tempDir, BASE_ENV, PYTHON, NOBODY, until } from '../../../tools/test/lib/harness.js';
import { startServer } from '../../../tools/test/lib/service.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const confPath = join(dir, 'bridge.conf');
const setConf = (text: string) => {
  writeFileSync(confPath, text);
  chmodSync(confPath, 0o644);
  chownSync(confPath, 0, 0);
};
// QEMU's net_bridge_run_helper, in Python.
const DRIVER = join(dir, 'qemu-like.py');
writeFileSync(DRIVER, `
import socket, os, sys, subprocess, fcntl
a, b = socket.socketpair()
p = subprocess.Popen([sys.argv[1], '--use-vnet', '--br=' + sys.argv[2], '--fd=%d' % b.fileno()], pass_fds=[b.fileno()])
b.close()
try:
    msg, fds, flags, addr = socket.recv_fds(a, 1, 1)
except OSError:
    fds = []
rc = p.wait()
if rc != 0 or len(fds) != 1:
    print('refused', rc); sys.exit(1)
ifr = fcntl.ioctl(fds[0], 0x800454d2, b'\\0' * 40)
name = ifr[:16].rstrip(b'\\0').decode()
info = subprocess.run(['ip', '-o', 'link', 'show', name], capture_output=True, text=True).stdout.split()
print('tap', name, 'master', info[info.index('master') + 1])
`);
chmodSync(DRIVER, 0o644);
const sock = join(dir, 'qemu-bridge.sock');
const SERVICE = ['peer-check', '-a', 'fd-recv', '-s', '0', '-m', '0', '-t', '2000', '-e', 'REQBRIDGE,REQVNETHDR',
  'bridge-acl', '-c', confPath, 'mktap', '--bridge-from-acl', '--vnet-hdr', '-R', '--owner-from-peer', 'fd-send', '-s', '1', '-d', '3'];
const asUid = (uid: number) => (uid === 0 ? [] : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups']);
const ours = (bridge: string, uid = NOBODY) => run([...asUid(uid), PYTHON, DRIVER, 'netgrant-bridge-helper', bridge], { env: { ...BASE_ENV, NETGRANT_BRIDGE_SOCKET: sock } });
// The stock helper reads /etc/qemu/bridge.conf: give it ours through an overlay in a mount namespace of its own.
const stock = (bridge: string) =>
  run(['unshare', '--mount', 'sh', '-c', `mount --make-rprivate / && mkdir -p ${dir}/ov && mount -t tmpfs none ${dir}/ov && mkdir ${dir}/ov/u ${dir}/ov/w ${dir}/ov/u/qemu && cp ${confPath} ${dir}/ov/u/qemu/bridge.conf && mount -t overlay overlay -o lowerdir=/etc,upperdir=${dir}/ov/u,workdir=${dir}/ov/w /etc && exec ${PYTHON} ${DRIVER} /usr/lib/qemu/qemu-bridge-helper ${bridge}`]);

sh('ip link add br-t0 type bridge && ip link set br-t0 up && ip link add br-t1 type bridge && ip link set br-t1 up');

for (const mode of ['netgrant-serve', 's6-ipcserver'] as const) {
  test(`an unprivileged "QEMU" gets a vnet-header tap on an allowed bridge (${mode})`, async () => {
    setConf('allow br-t0\n');
    const s = await startServer(mode === 'netgrant-serve' ? ['netgrant-serve', sock, ...SERVICE] : ['s6-ipcserver', sock, ...SERVICE], sock);
    try {
      const r = ours('br-t0');
      assert.is(r.status, 0, r.stderr + s.output());
      assert.match(r.stdout, /^tap tap\d+ master br-t0\n$/);
      // The server's chain may hold its copy of the fd a moment longer than the client.
      const taps = () => run(['ip', '-j', 'link', 'show', 'type', 'tun']).stdout.trim();
      assert.ok(await until(() => taps() === '[]'), `the tap went with the driver and the server's chain: ${taps()}`);
      const denied = ours('br-t1');
      assert.is(denied.status, 1);
      assert.match(denied.stdout, /^refused 1/);
      assert.match(denied.stderr, /netgrant-bridge-helper: fatal: the netgrant service at .* refused to create a tap on br-t1/);
      assert.ok(await s.waitForOutput(/bridge-acl: fatal: access denied by acl file: uid 65534 may not use bridge br-t1/), s.output());
    } finally {
      await s.stop();
    }
  });
}

test('the same decisions as Debian\'s qemu-bridge-helper for the same bridge.conf', async () => {
  const s = await startServer(['netgrant-serve', sock, ...SERVICE], sock);
  try {
    const cases: [string, string][] = [
      ['allow br-t0\n', 'br-t0'],
      ['allow br-t0\n', 'br-t1'],
      ['allow all\n', 'br-t1'],
      ['allow all\ndeny br-t1\n', 'br-t1'],
      ['deny all\nallow br-t0\n', 'br-t0'],
      ['# nothing\n', 'br-t0'],
      ['allow br-t0\nfrobnicate x\n', 'br-t0'],
      ['allow br-t0-long-name-x\nallow br-t0\n', 'br-t0'],
      ['include /nonexistent\nallow br-t0\n', 'br-t0'],
    ];
    for (const [text, bridge] of cases) {
      setConf(text);
      const o = stock(bridge);
      const m = ours(bridge, 0);
      assert.is(m.status === 0, o.status === 0, `${JSON.stringify(text)} on ${bridge}: stock ${o.status} (${o.stdout.trim()} ${o.stderr.trim()}), ours ${m.status} (${m.stderr.trim()})`);
    }
    // A 16-byte name: both refuse before any ACL matching.
    setConf('allow all\n');
    assert.is(stock('abcdefghijklmnop').status === 0, false);
    assert.is(ours('abcdefghijklmnop', 0).status, 1);
  } finally {
    await s.stop();
  }
});

test('helper usage errors exit 1 with one line', () => {
  for (const args of [[], ['--br=br0'], ['--fd=3'], ['--br=br0', '--fd=x'], ['--br=br0', '--fd=9'], ['--bogus'], ['--br=br0', '--fd=0', 'extra']]) {
    const r = run(['netgrant-bridge-helper', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    assert.is(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^netgrant-bridge-helper: fatal: [^\n]+\n$/);
  }
  const noService = run([PYTHON, DRIVER, 'netgrant-bridge-helper', 'br-t0'], { env: { ...BASE_ENV, NETGRANT_BRIDGE_SOCKET: join(dir, 'absent.sock') } });
  assert.is(noService.status, 1);
  assert.match(noService.stderr, /connect to .*absent\.sock: No such file or directory/);
});

test.after(cleanup);
test.run();
