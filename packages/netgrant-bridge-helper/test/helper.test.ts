// netgrant-bridge-helper driven exactly as QEMU drives a bridge helper
// (socketpair, fork/exec with --fd, one byte + SCM_RIGHTS, fd accepted only
// on exit 0), against a netgrant service; Debian's qemu-bridge-helper,
// given the same bridge.conf, is the oracle for the ACL decisions.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync, chmodSync, chownSync } from 'node:fs';
import { join } from 'node:path';
import { run, sh, tempDir, BASE_ENV, PYTHON, NOBODY, ROOT, until } from '../../../tools/test/lib/harness.js';
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
const DRIVER = join(ROOT, 'tools', 'test', 'lib', 'qemu-helper.py');
const sock = join(dir, 'qemu-bridge.sock');
// fd-recv -t 20000: the client is a Node start (netgrant-bridge-helper), which can take seconds
// on a loaded 2-core machine (netgrant-serve.test.ts saw one over 3 s).
const SERVICE = ['peer-check', '-a', 'fd-recv', '-s', '0', '-m', '0', '-t', '20000', '-e', 'REQBRIDGE,REQVNETHDR',
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

test('the service chain can pin: unmodified QEMU\'s helper protocol gets a tap whose guest is held to the first MAC it uses', async () => {
  setConf('allow br-t0\n');
  const pinned = SERVICE.map((w) => (w === '--owner-from-peer' ? ['--owner-from-peer', '--pin'] : [w])).flat();
  const s = await startServer(['netgrant-serve', sock, ...pinned], sock);
  try {
    const r = ours('br-t0');
    assert.is(r.status, 0, r.stderr + s.output());
    assert.match(r.stdout, /^tap tap\d+ master br-t0 pinned\n$/);
  } finally {
    await s.stop();
  }
});

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

// Without NETGRANT_BRIDGE_SOCKET (libvirt clears the environment): the
// socket line of /etc/netgrant/bridge-helper.conf, given through an
// overlay on /etc in a mount namespace of its own, else the compiled-in
// default (the runner gives this file a /run/netgrant of its own).
const withConf = (conf: { text: string; uid?: number; mode?: number } | null, bridge: string, env: Record<string, string> = {}) => {
  const setup = conf === null ? 'true' : [
    `printf '%s' '${conf.text}' > ${dir}/ov/u/netgrant/bridge-helper.conf`,
    `chown ${conf.uid ?? 0}:0 ${dir}/ov/u/netgrant/bridge-helper.conf`,
    `chmod ${(conf.mode ?? 0o644).toString(8)} ${dir}/ov/u/netgrant/bridge-helper.conf`,
  ].join(' && ');
  return run(['unshare', '--mount', 'sh', '-c', `mount --make-rprivate / && mkdir -p ${dir}/ov && mount -t tmpfs none ${dir}/ov && mkdir -p ${dir}/ov/u/netgrant ${dir}/ov/w && ${setup} && mount -t overlay overlay -o lowerdir=/etc,upperdir=${dir}/ov/u,workdir=${dir}/ov/w /etc && exec "$@"`,
    'sh', ...asUid(NOBODY), PYTHON, DRIVER, 'netgrant-bridge-helper', bridge], { env: { ...BASE_ENV, ...env } });
};

test('the service without the environment: the root-owned config file, else the compiled-in default', async () => {
  // Each service allows one bridge: which one answered shows in what is allowed.
  setConf('allow br-t0\n');
  const conf1 = join(dir, 'bridge-t1.conf');
  writeFileSync(conf1, 'allow br-t1\n');
  chmodSync(conf1, 0o644);
  const other = join(dir, 'other.sock');
  const dflt = '/run/netgrant/qemu-bridge.sock';
  const s = await startServer(['netgrant-serve', other, ...SERVICE.map((w) => (w === confPath ? conf1 : w))], other);
  const d = await startServer(['netgrant-serve', dflt, ...SERVICE], dflt);
  try {
    const viaConf = withConf({ text: `# the bridge service\nsocket ${other}\n` }, 'br-t1');
    assert.is(viaConf.status, 0, viaConf.stderr + s.output());
    assert.match(viaConf.stdout, /^tap tap\d+ master br-t1\n$/);
    assert.is(withConf({ text: `socket ${other}\n` }, 'br-t0').status, 1, 'the file\'s service, not the default, answered');
    const viaDefault = withConf(null, 'br-t0');
    assert.is(viaDefault.status, 0, viaDefault.stderr + d.output());
    assert.is(withConf(null, 'br-t1').status, 1, 'the default service answered');
    // The environment, when set, wins over the file.
    const viaEnv = withConf({ text: `socket ${join(dir, 'absent.sock')}\n` }, 'br-t0', { NETGRANT_BRIDGE_SOCKET: dflt });
    assert.is(viaEnv.status, 0, viaEnv.stderr);
    // The file names the socket: a wrong one is a connect failure, not the default.
    const absent = withConf({ text: `socket ${join(dir, 'absent.sock')}\n` }, 'br-t0');
    assert.is(absent.status, 1);
    assert.match(absent.stderr, /^netgrant-bridge-helper: fatal: connect to .*absent\.sock: No such file or directory[^\n]*\n$/);
    // Untrusted or malformed files are refused, never skipped.
    const refused: [{ text: string; uid?: number; mode?: number }, RegExp][] = [
      [{ text: `socket ${other}\n`, uid: NOBODY }, /bridge-helper\.conf: owned by uid 65534, not root/],
      [{ text: `socket ${other}\n`, mode: 0o666 }, /bridge-helper\.conf: writable by group and others/],
      [{ text: `sock ${other}\n` }, /bridge-helper\.conf line 1: expected "socket \/PATH"/],
      [{ text: 'socket relative.sock\n' }, /the socket must be an absolute path/],
      [{ text: `socket ${other}\nsocket ${other}\n` }, /line 2: a second socket line/],
    ];
    for (const [conf, re] of refused) {
      const r = withConf(conf, 'br-t0');
      assert.is(r.status, 1, `${JSON.stringify(conf)}: ${r.stderr}`);
      assert.match(r.stderr, /^netgrant-bridge-helper: fatal: [^\n]+\n$/);
      assert.match(r.stderr, re);
    }
  } finally {
    await s.stop();
    await d.stop();
  }
});

test.after(cleanup);
test.run();
