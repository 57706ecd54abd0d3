// Privilege probes: what a client (or a caller of a capability-aware
// launcher) can and cannot make a privileged chain do. Each test names the
// CVE class of a reference system it guards against (docs/security.md).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { socketpair, close, sendMessage, encodeEnv } from '@netgrant/core';
import { run, runWithFds, sh, tempDir, failsWith, NOBODY, BASE_ENV, type Result } from '../../tools/test/lib/harness.js';
import { startServer } from '../../tools/test/lib/service.js';
import { installCapable } from '../../tools/test/lib/single-executable.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const AS_NOBODY = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];
const LAUNCH_CAPS = '+dac_override,+sys_admin,+net_admin';
const CAPABILITY_AWARE = [...AS_NOBODY, `--inh-caps=${LAUNCH_CAPS}`, `--ambient-caps=${LAUNCH_CAPS}`];

// A script NODE_OPTIONS=--require would load: it leaves a marker file.
const evil = join(dir, 'evil.cjs');
writeFileSync(evil, `require('fs').writeFileSync(process.env.MARKER || ${JSON.stringify(join(dir, 'pwned'))}, 'ran as ' + process.getuid());\n`);
chmodSync(evil, 0o644);
let markers = 0;
const marker = () => join(dir, `pwned-${markers++}`);

/** Run a chain that reads one message from a socketpair carrying vars. */
function receive(argv: string[], vars: [string, string][]): Result {
  const [a, b] = socketpair();
  try {
    sendMessage(a, encodeEnv(vars));
    close(a);
    return runWithFds(argv, { 6: b });
  } finally {
    close(b);
  }
}

test('NODE_OPTIONS is a real hole: any netgrant link started with it runs the named code first (so who sets it matters)', () => {
  const m = marker();
  const r = run(['mktap', '--no-such-option'], { env: { NODE_OPTIONS: `--require=${evil}`, MARKER: m } });
  assert.is(r.status, 100);
  assert.ok(existsSync(m), 'the --require script ran before any netgrant code');
});

test('a peer cannot choose the code a chain runs next: fd-recv refuses NODE_*, LD_*, PATH, BASH_ENV... even with -E, and -e cannot name them', () => {
  for (const name of ['NODE_OPTIONS', 'NODE_PATH', 'NODE_REPL_EXTERNAL_MODULE', 'LD_PRELOAD', 'LD_LIBRARY_PATH', 'GCONV_PATH', 'PATH', 'BASH_ENV', 'ENV']) {
    const m = marker();
    // The next link is one of ours: under NETGRANT_EXEC_ONLY=1 (this file's second run) a real exec of Node.
    const value = name.startsWith('NODE_') ? `--require=${evil}` : name === 'PATH' ? dir : evil;
    const r = receive(['fd-recv', '-s', '6', '-E', 'mktap', '--no-such-option'], [[name, value], ['MARKER', m], ['OK', '1']]);
    assert.is(failsWith(r, 'fd-recv', 111, new RegExp(`variable ${name} refused: it chooses the code the next program runs`)), null, `${name}: ${r.stderr}`);
    assert.not.ok(existsSync(m), `${name}: nothing ran`);
    const named = run(['fd-recv', '-s', '6', '-e', `OK,${name}`, 'true']);
    assert.is(failsWith(named, 'fd-recv', 100, new RegExp(`-e: ${name} is never taken from a peer`)), null, named.stderr);
  }
  // Ordinary metadata still passes with -E.
  const ok = receive(['fd-recv', '-s', '6', '-m', '0', '-E', 'sh', '-c', 'echo "$OK $TAPNAME"'], [['OK', '1'], ['TAPNAME', 'tap0']]);
  assert.is(ok.stdout, '1 tap0\n', ok.stderr);
});

test('the first Node start: s6-sudod hands a client\'s NODE_OPTIONS to the chain only where the administrator left it present and empty', async () => {
  const chain = ['s6-sudod', 'cap-drop', '--'];
  const plain = await startServer(['s6-ipcserver', join(dir, 'plain.sock'), ...chain], join(dir, 'plain.sock'));
  const open = await startServer(['s6-ipcserver', join(dir, 'open.sock'), ...chain], join(dir, 'open.sock'), { NODE_OPTIONS: '' });
  try {
    const client = (sock: string, m: string) =>
      run([...AS_NOBODY, 's6-sudo', sock, 'sh', '-c', 'echo "[$NODE_OPTIONS]"'], { env: { NODE_OPTIONS: `--require=${evil}`, MARKER: m } });
    const m1 = marker();
    const r1 = client(plain.path, m1);
    assert.is(r1.stdout, '[]\n', r1.stderr + plain.output());
    assert.not.ok(existsSync(m1), 'the default: the client\'s NODE_OPTIONS never reaches the root chain');
    // MARKER is not passed either (absent on the server), so the script writes its default path.
    const m2 = join(dir, 'pwned');
    const r2 = client(open.path, m2);
    assert.is(r2.status, 0, r2.stderr + open.output());
    assert.ok(existsSync(m2), 'a server environment with NODE_OPTIONS= (empty) lets the client run code as root: never do that');
    rmSync(m2);
  } finally {
    await plain.stop();
    await open.stop();
  }
});

test('forged identity: without a super-server, peer-check -E refuses; a peer cannot send PROTO/IPCREMOTEEUID/PEERUID through fd-recv -E', () => {
  const bare = run(['peer-check', '-E', '-u', '0', 'sh', '-c', 'echo ALLOWED'], { env: { IPCREMOTEEUID: '0', IPCREMOTEEGID: '0' } });
  assert.is(failsWith(bare, 'peer-check', 100, /PROTO not set \(-E needs a UCSPI super-server\)/), null, bare.stderr);
  for (const forged of [[['PROTO', 'IPC'], ['IPCREMOTEEUID', '0'], ['IPCREMOTEEGID', '0']], [['IPCREMOTEEUID', '0']], [['PEERUID', '0'], ['PEERGID', '0']]] as [string, string][][]) {
    // The super-server said the peer is nobody; the peer's message says root.
    const [a, b] = socketpair();
    sendMessage(a, encodeEnv(forged));
    close(a);
    const r = runWithFds(['fd-recv', '-s', '6', '-m', '0', '-E', 'peer-check', '-E', '-u', '0', 'mktap', '--owner-from-peer', 'sh', '-c', 'echo ALLOWED'], { 6: b }, {
      env: { PROTO: 'IPC', IPCREMOTEEUID: String(NOBODY), IPCREMOTEEGID: String(NOBODY) },
    });
    close(b);
    assert.is(failsWith(r, 'fd-recv', 111, /variable (PROTO|IPCREMOTEEUID|PEERUID) refused: it names the peer/), null, `${JSON.stringify(forged)}: ${r.stderr}`);
    assert.is(r.stdout, '');
  }
});

test('another user\'s tap: a request for its name never attaches to it (IFF_TUN_EXCL), and leaves it as it was', () => {
  sh('ip tuntap add dev vm-a mode tap user 4242 group 4242 && ip link set vm-a mtu 1400');
  try {
    const before = sh('ip -d -j link show vm-a').stdout;
    const r = run(['mktap', '-R', '--name-prefix', 'vm-', '--owner-from-peer', '-m', '9000', 'true'], {
      env: { PEERUID: '4243', PEERGID: '4243', REQNAME: 'vm-a', REQMTU: '9000' },
    });
    assert.is(failsWith(r, 'mktap', 111, /vm-a/), null, r.stderr);
    assert.is(sh('ip -d -j link show vm-a').stdout, before, 'owner, group, MTU, flags unchanged');
    // The same request for a free name works: the refusal was about the other user's device.
    const free = run(['mktap', '-R', '--name-prefix', 'vm-', '--owner-from-peer', 'true'], { env: { PEERUID: '4243', PEERGID: '4243', REQNAME: 'vm-b' } });
    assert.is(free.status, 0, free.stderr);
  } finally {
    sh('ip link del vm-a');
  }
});

test('a refused bridge reads the same whether it exists or not; an allowed one is looked up only after the ACL — CVE-2022-47952 class', () => {
  sh('ip link add brx0 type bridge');
  try {
    const acl = join(dir, 'acl.conf');
    writeFileSync(acl, 'allow brok0\n');
    chmodSync(acl, 0o644);
    const ask = (bridge: string) => run(['bridge-acl', '-c', acl, 'mktap', '--bridge-from-acl', 'true'], { env: { PEERUID: String(NOBODY), PEERGID: String(NOBODY), REQBRIDGE: bridge } });
    const existing = ask('brx0');
    const missing = ask('brmissing0');
    assert.is(failsWith(existing, 'bridge-acl', 1, /access denied by acl file/), null, existing.stderr);
    assert.is(existing.stderr.replace('brx0', 'NAME'), missing.stderr.replace('brmissing0', 'NAME'));
    const allowedMissing = ask('brok0');
    assert.is(failsWith(allowedMissing, 'mktap', 111, /brok0/), null, allowedMissing.stderr);
  } finally {
    sh('ip link del brx0');
  }
});

test('a launcher given capabilities as ambient ones (not file capabilities) runs its caller\'s NODE_OPTIONS with them: deploy it as a file-capability executable (AT_SECURE)', () => {
  const m = marker();
  writeFileSync(join(dir, 'caps.cjs'), `require('fs').writeFileSync(process.env.MARKER, require('fs').readFileSync('/proc/self/status', 'utf8').match(/CapPrm:.*/)[0]);\n`);
  chmodSync(join(dir, 'caps.cjs'), 0o644);
  const r = run([...CAPABILITY_AWARE, 'mkmacvlan', '--no-such-option'], { env: { NODE_OPTIONS: `--require=${join(dir, 'caps.cjs')}`, MARKER: m } });
  assert.is(r.status, 100);
  assert.match(readFileSync(m, 'utf8'), /^CapPrm:\s+0*2[0-9a-f]*1002$/, 'the caller\'s script held CAP_DAC_OVERRIDE, CAP_NET_ADMIN and CAP_SYS_ADMIN');
});

// ---- the launchers' configuration, chosen by a capability-aware caller:
// each probe runs against both ways a launcher gets its capabilities
// without root (ambient ones from setpriv, and the setcap'd single
// executable, docs/single-executable.md).
const seaBin = installCapable(join(dir, 'prefix'));
const CALLERS: [string, (prog: string) => string[]][] = [
  ['ambient capabilities', (prog) => [...CAPABILITY_AWARE, prog]],
  ['the setcap single executable', (prog) => [...AS_NOBODY, join(seaBin, prog)]],
];
sh('ip link add pp0 type veth peer name pp1 && ip addr add 10.50.0.1/24 dev pp0 && ip addr add 10.51.0.1/24 dev pp0 && ip link set pp0 up && ip link set pp1 up');
function conf(name: string, text: string, mode = 0o644): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  chmodSync(p, mode);
  return p;
}

for (const [i, [how, as]] of CALLERS.entries()) {
  test(`a capability-aware launcher never reads a file for its caller that the caller cannot read (/etc/shadow stays unquoted) — CVE-2018-6556 class (${how})`, () => {
    const r = run([...as('mkmacvlan'), '-c', '/etc/shadow', 'true']);
    assert.is(failsWith(r, 'mkmacvlan', 111, /^mkmacvlan: fatal: open \/etc\/shadow: Permission denied \(EACCES\)$/), null, r.stderr);
    const secret = conf(`secret-${i}.conf`, '10.50.0.0/24\n', 0o600);
    const s = run([...as('mkmacvlan'), '-c', secret, 'true']);
    assert.is(failsWith(s, 'mkmacvlan', 111, /EACCES/), null, s.stderr);
    // The same file readable by the caller works: DAC_OVERRIDE was never what allowed it.
    // (A launcher without root creates neither the lease lock nor the registry: root made them, as a root launch or tmpfiles.d would.)
    sh('install -d -m 0755 /run/netgrant && install -m 0600 /dev/null /run/netgrant/lease.lock && install -d -m 0700 /run/netgrant/launched');
    chmodSync(secret, 0o644);
    const ok = run([...as('mkmacvlan'), '-c', secret, 'sh', '-c', 'echo $NETADDRS']);
    assert.match(ok.stdout, /^10\.50\.0\.\d+\/24\n$/, ok.stderr);
  });

  test(`errors do not tell a capability-aware caller which hidden paths exist — CVE-2022-47952 class (${how})`, () => {
    const hidden = join(dir, `hidden-${i}`);
    mkdirSync(hidden, 0o700);
    conf(`hidden-${i}/real.conf`, '10.50.0.0/24\n');
    const say = (p: string) => run([...as('mkmacvlan'), '-c', p, 'true']).stderr.replace(p, 'PATH');
    assert.is(say(join(hidden, 'real.conf')), say(join(hidden, 'absent.conf')));
    assert.is(say(join(hidden, 'real.conf')), 'mkmacvlan: fatal: open PATH: Permission denied (EACCES)\n');
  });
}

test('a FIFO or device as a configuration (or a bridge.conf include) is refused without being opened (a blocked writer stays blocked)', async () => {
  const fifo = join(dir, 'fifo.conf');
  sh(`mkfifo -m 0644 ${fifo}`);
  const writer = spawn('sh', ['-c', `echo 10.50.0.0/24 > ${fifo}`], { stdio: 'ignore' });
  try {
    for (const argv of [['mkmacvlan', '-c', fifo, 'true'], ...CALLERS.map(([, as]) => [...as('mkmacvlan'), '-c', fifo, 'true']), ['mkmacvlan', '-c', '/dev/zero', 'true']]) {
      const r = run(argv, { timeout: 5000 });
      assert.is(failsWith(r, 'mkmacvlan', 100, /: not a regular file$/), null, `${argv.join(' ')}: ${r.status} ${r.stderr}`);
    }
    const acl = run(['bridge-acl', '-c', fifo, 'true'], { timeout: 5000, env: { PEERUID: '0', PEERGID: '0', REQBRIDGE: 'br0' } });
    assert.is(failsWith(acl, 'bridge-acl', 100, /: not a regular file$/), null, acl.stderr);
    // An include naming a FIFO (say, in a directory a user can write) is skipped, not opened.
    const main = conf('includes-fifo.conf', `include ${fifo}\nallow br0\n`);
    const inc = run(['bridge-acl', '-c', main, 'sh', '-c', 'echo $ACLBRIDGE'], { timeout: 5000, env: { PEERUID: String(NOBODY), PEERGID: String(NOBODY), REQBRIDGE: 'br0' } });
    assert.is(inc.stdout, 'br0\n', inc.stderr);
    assert.is(inc.stderr, `bridge-acl: warning: ${fifo}: not a regular file; skipped\n`);
    await sleep(100);
    assert.is(writer.exitCode, null, 'no reader ever opened the FIFO');
  } finally {
    writer.kill('SIGKILL');
  }
});

test('a configuration renamed over while a launcher waits for the lease lock: the waiting launch uses the one file it checked and read; the next one uses the new file', async () => {
  const path = conf('live.conf', '10.50.0.0/24\n');
  // Another launch in progress: root holds the lease lock.
  sh('install -d -m 0755 /run/netgrant && [ -e /run/netgrant/lease.lock ] || install -m 0600 /dev/null /run/netgrant/lease.lock');
  const holder = spawn('flock', ['--no-fork', '/run/netgrant/lease.lock', 'sleep', '30'], { stdio: 'ignore' });
  await sleep(200);
  const waiting = spawn('mkmacvlan', ['-c', path, '-t', '30000', 'sh', '-c', 'echo $NETADDRS'], { env: BASE_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  waiting.stdout!.on('data', (d) => (out += d));
  waiting.stderr!.on('data', (d) => (err += d));
  const done = new Promise<number | null>((resolve) => waiting.on('close', resolve));
  try {
    // It reads its configuration first, then waits for the lock (polling: no waiter shows in /proc/locks).
    await sleep(2500);
    assert.is(waiting.exitCode, null, `the launcher did not wait for the lock: ${err}`);
    writeFileSync(join(dir, 'live.new'), '10.51.0.0/24\n');
    chmodSync(join(dir, 'live.new'), 0o644);
    renameSync(join(dir, 'live.new'), path);
    holder.kill('SIGKILL');
    const status = await done;
    assert.is(status, 0, `waiting launcher: ${out} ${err}`);
    assert.match(out, /^10\.50\.0\.\d+\/24\n$/, 'the file it read, whole');
    const next = run(['mkmacvlan', '-c', path, 'sh', '-c', 'echo $NETADDRS']);
    assert.match(next.stdout, /^10\.51\.0\.\d+\/24\n$/, next.stderr);
  } finally {
    holder.kill('SIGKILL');
    waiting.kill('SIGKILL');
  }
});

test.after(() => {
  sh('ip link del pp0');
  cleanup();
});
test.run();
