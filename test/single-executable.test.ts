// The single executable with file capabilities (docs/single-executable.md),
// run as the ipvlan seed runs: installed by install-prefix, setcap, and run
// directly by an unprivileged user (uid 65534), who controls its argv
// (argv[0] too), environment, cwd and fds.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, chownSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { socketpair, close } from '@netgrant/core';
import { run, runWithFds, sh, tempDir, failsWith, NOBODY, NODE, ROOT } from '../tools/test/lib/harness.js';
import { installCapable, setcapLauncher } from '../tools/test/lib/single-executable.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const bin = installCapable(join(dir, 'prefix'));
const exe = join(bin, 'netgrant');
const AS_NOBODY = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];
// The caller's own PATH: the installed links first (in-process chaining resolves through it).
const ENV = { PATH: `${bin}:/usr/sbin:/usr/bin:/sbin:/bin` };
// The caller's variables through env(1) after setpriv: setpriv (root) must not be the one that takes LD_PRELOAD.
const nobody = (argv: string[], env: Record<string, string> = {}) =>
  run([...AS_NOBODY, 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv], { env: ENV });

function conf(name: string, text: string, mode = 0o644): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  chmodSync(p, mode);
  return p;
}
sh('ip link add sx0 type veth peer name sx1 && ip addr add 10.60.0.1/24 dev sx0 && ip link set sx0 up && ip link set sx1 up');
// The lease lock and the registry are root's (a root launch or tmpfiles.d makes them).
sh('install -d -m 0755 /run/netgrant && { [ -e /run/netgrant/lease.lock ] || install -m 0600 /dev/null /run/netgrant/lease.lock; } && install -d -m 0700 /run/netgrant/launched');
const config = conf('launch.conf', '10.60.0.0/24\n');
const STATUS = 'grep -E "^Cap(Inh|Prm|Eff|Amb|Bnd)" /proc/self/status';

test('setcap is the install step: getcap shows the three capabilities, permitted only; installing again leaves a file without them (setcap again)', () => {
  assert.is(run(['getcap', exe]).stdout, `${exe} cap_dac_override,cap_net_admin,cap_sys_admin=p\n`);
  const again = join(dir, 'again');
  installCapable(again);
  assert.is(run(['getcap', join(again, 'bin', 'netgrant')]).stdout.trim(), `${join(again, 'bin', 'netgrant')} cap_dac_override,cap_net_admin,cap_sys_admin=p`);
  // The install writes a new file: what setcap gave the old one is gone.
  assert.is(run([NODE, join(ROOT, 'tools', 'install', 'install.mjs'), again]).status, 0);
  assert.is(run(['getcap', join(again, 'bin', 'netgrant')]).stdout, '');
  sh(`rm -rf ${again}`);
});

test('nobody runs `mkmacvlan ip addr show` directly: its own namespace and address, and the program has no capability (bounding set: the caller\'s)', () => {
  const r = nobody(['mkmacvlan', '-c', config, 'ip', '-4', '-o', 'addr', 'show', 'eth0']);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /^\d+: eth0\s+inet 10\.60\.0\.\d+\/24 /, r.stdout);
  const callerBnd = nobody(['sh', '-c', 'grep CapBnd /proc/self/status']).stdout;
  const s = nobody(['mkmacvlan', '-c', config, 'sh', '-c', `id -u; ${STATUS}`]);
  assert.is(s.status, 0, s.stderr);
  const [uid, ...caps] = s.stdout.trim().split('\n');
  assert.is(uid, String(NOBODY));
  assert.is(caps.length, 5);
  for (const l of caps.filter((c) => !c.startsWith('CapBnd'))) assert.match(l, /:\s+0000000000000000$/, l);
  assert.is(`${caps.find((c) => c.startsWith('CapBnd'))}\n`, callerBnd);
  // Through `netgrant PROGRAM` too. (Not on to cap-drop: not root, it cannot drop the bounding set, and says so.)
  const named = nobody([exe, 'mkmacvlan', '-c', config, 'sh', '-c', STATUS]);
  assert.is(named.status, 0, named.stderr);
  for (const l of named.stdout.trim().split('\n').filter((c) => !c.startsWith('CapBnd'))) assert.match(l, /:\s+0000000000000000$/, l);
});

test('each capability is effective only around its calls and leaves the permitted set after its last use (capset calls, traced)', () => {
  const log = join(dir, 'strace.log');
  // strace is root (CAP_SYS_PTRACE): the traced exec still gets its file capabilities.
  const r = run(['strace', '-f', '-qq', '-o', log, '-e', 'trace=capset,execve', ...AS_NOBODY, join(bin, 'mkmacvlan'), '-c', config, 'true'], { env: ENV });
  assert.is(r.status, 0, r.stderr);
  const lines = readFileSync(log, 'utf8').split('\n');
  const start = lines.findIndex((l) => l.includes(`execve("${join(bin, 'mkmacvlan')}"`));
  const end = lines.findIndex((l) => /execve\("[^"]*\/true"/.test(l));
  assert.ok(start >= 0 && end > start, lines.join('\n'));
  const sets = lines.slice(start, end).filter((l) => l.includes('capset(') && l.endsWith('= 0')).map((l) => {
    const m = /effective=([^,]*), permitted=([^,]*), inheritable=([^}]*)\}/.exec(l)!;
    const caps = (s: string) => (s === '0' ? [] : s.split('|').map((c) => c.replace('1<<', '')));
    return { effective: caps(m[1]!), permitted: caps(m[2]!) };
  });
  assert.ok(sets.length >= 6, JSON.stringify(sets));
  // Nothing effective from the start (file capabilities are permitted only, and the launcher clears the effective set first).
  assert.equal(sets[0]!.effective, []);
  for (const s of sets) assert.ok(s.effective.every((c) => s.permitted.includes(c)), JSON.stringify(s));
  // Each raise (some calls need two: the registry with netlink) is undone before the next: effective returns to empty.
  for (let i = 1; i < sets.length; i++) if (sets[i]!.effective.length && sets[i - 1]!.effective.length) assert.ok(sets[i - 1]!.effective.every((c) => sets[i]!.effective.includes(c)) || sets[i]!.effective.every((c) => sets[i - 1]!.effective.includes(c)), `nested raises only: ${JSON.stringify(sets.slice(i - 1, i + 1))}`);
  const raised = sets.filter((s) => s.effective.length === 1).map((s) => s.effective[0]);
  assert.equal([...new Set(raised)].sort(), ['CAP_DAC_OVERRIDE', 'CAP_NET_ADMIN', 'CAP_SYS_ADMIN'].filter((c) => raised.includes(c)));
  assert.ok(raised.includes('CAP_SYS_ADMIN') && raised.includes('CAP_NET_ADMIN'), JSON.stringify(raised));
  // The permitted set only shrinks, and each capability leaves it after its last raise.
  for (let i = 1; i < sets.length; i++) for (const c of sets[i]!.permitted) assert.ok(sets[i - 1]!.permitted.includes(c), `permitted grew at ${i}: ${JSON.stringify(sets)}`);
  for (const cap of new Set(raised)) {
    const last = sets.map((s) => s.effective.includes(cap!)).lastIndexOf(true);
    assert.ok(sets.slice(last + 1).some((s) => !s.permitted.includes(cap!)), `${cap} dropped after its last use`);
  }
  assert.equal(sets.at(-1), { effective: [], permitted: [] });
});

test('the read permission on the configuration is the access list: a file nobody cannot read (or /etc/shadow) is refused; readable, it works', () => {
  const secret = conf('secret.conf', '10.60.0.0/24\n', 0o600);
  const s = nobody(['mkmacvlan', '-c', secret, 'true']);
  assert.is(failsWith(s, 'mkmacvlan', 111, /^mkmacvlan: fatal: open [^ ]+secret.conf: Permission denied \(EACCES\)$/), null, s.stderr);
  const shadow = nobody(['mkmacvlan', '-c', '/etc/shadow', 'true']);
  assert.is(failsWith(shadow, 'mkmacvlan', 111, /^mkmacvlan: fatal: open \/etc\/shadow: Permission denied \(EACCES\)$/), null, shadow.stderr);
  chmodSync(secret, 0o644);
  assert.is(nobody(['mkmacvlan', '-c', secret, 'true']).status, 0);
});

test('argv[0] is the caller\'s: a path on another filesystem does not make a configuration there pass as the program\'s own', () => {
  const other = join(dir, 'otherfs');
  mkdirSync(other);
  sh(`mount -t tmpfs -o mode=0755 none ${other}`);
  try {
    writeFileSync(join(other, 'mkmacvlan'), '');
    writeFileSync(join(other, 'c'), '10.60.0.0/24\n');
    chmodSync(join(other, 'c'), 0o644);
    const r = nobody(['python3', '-c', 'import os,sys; os.execv(sys.argv[1], sys.argv[2:])', exe, join(other, 'mkmacvlan'), '-c', join(other, 'c'), 'true']);
    assert.is(failsWith(r, 'mkmacvlan', 100, /not on the same filesystem/), null, r.stderr);
  } finally {
    sh(`umount ${other}`);
  }
});

test('a program other than the launchers drops every capability first: cap-drop -k net_admin keeps nothing for nobody', () => {
  const r = nobody(['cap-drop', '-k', 'net_admin', '--', 'sh', '-c', STATUS]);
  if (r.status === 0) {
    for (const l of r.stdout.trim().split('\n').filter((c) => !c.startsWith('CapBnd'))) assert.match(l, /:\s+0000000000000000$/, l);
  } else {
    assert.match(r.stderr, /^cap-drop: fatal: [^\n]+\n$/);
  }
  const s = nobody(['netgrant', 'netns-enter', '--new', 'true']);
  assert.is(failsWith(s, 'netns-enter', 111, /EPERM/), null, s.stderr);
});

test('Node and ld.so take nothing from the caller: NODE_OPTIONS, NODE_V8_COVERAGE, LD_PRELOAD, LD_LIBRARY_PATH, NODE_CHANNEL_FD', () => {
  // The marker's directory is nobody's to write (not the prefix's: the executable refuses to load from under a world-writable one).
  const open = join(dir, 'open');
  mkdirSync(open);
  chownSync(open, NOBODY, NOBODY);
  const marker = join(open, 'marker');
  const evil = conf('evil.cjs', `require('fs').writeFileSync(${JSON.stringify(marker)}, 'node');\n`);
  const cov = join(dir, 'cov');
  mkdirSync(cov, 0o777);
  chmodSync(cov, 0o777);
  // The preloaded object says which program it ran in.
  writeFileSync(join(dir, 'evil.c'), `#include <stdio.h>\n__attribute__((constructor)) static void f(void) { char c[64] = {0}; FILE *i = fopen("/proc/self/comm", "r"); if (i) { fgets(c, 63, i); fclose(i); } FILE *o = fopen("${marker}", "a"); if (o) { fputs(c, o); fclose(o); } }\n`);
  const cc = run(['gcc', '-shared', '-fPIC', '-o', join(dir, 'evil.so'), join(dir, 'evil.c')]);
  assert.is(cc.status, 0, cc.stderr);
  chmodSync(join(dir, 'evil.so'), 0o755);
  {
    const env = { NODE_OPTIONS: `--require=${evil}`, NODE_V8_COVERAGE: cov, LD_PRELOAD: join(dir, 'evil.so'), LD_LIBRARY_PATH: dir, NODE_DEBUG: 'fs', NODE_REDIRECT_WARNINGS: join(dir, 'warn') };
    const r = nobody(['mkmacvlan', '-c', config, 'sh', '-c', 'env | grep -c "^NODE_" || true'], env);
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stdout, '0\n', 'no NODE_* reaches the program');
    assert.not.ok(existsSync(marker), `nothing of the caller's ran: ${existsSync(marker) && readFileSync(marker, 'utf8')}`);
    assert.equal(readdirSync(cov), [], 'no coverage written');
    // A failing launch (it exits, not execs): still no coverage, the error one line first.
    const f = nobody(['mkmacvlan', '-c', '/etc/shadow', 'true'], env);
    assert.is(f.status, 111);
    assert.match(f.stderr, /^mkmacvlan: fatal: open \/etc\/shadow: Permission denied \(EACCES\)\n/);
    assert.equal(readdirSync(cov), []);
    assert.not.ok(existsSync(marker));
    // The probes are live: the same .so and coverage directory work on a program without capabilities.
    const plain = nobody(['sh', '-c', 'true'], { LD_PRELOAD: join(dir, 'evil.so') });
    assert.is(plain.status, 0);
    assert.is(readFileSync(marker, 'utf8'), 'sh\n');
  }
  const [a, b] = socketpair();
  try {
    const ch = runWithFds([...AS_NOBODY, 'mkmacvlan', '-c', config, 'true'], { 3: b }, { env: { ...ENV, NODE_CHANNEL_FD: '3' } });
    assert.is(failsWith(ch, 'mkmacvlan', 100, /refused: started with a Node IPC channel \(NODE_CHANNEL_FD\)/), null, ch.stderr);
  } finally {
    close(a);
    close(b);
  }
});

// Under Node 22 and 24 the build takes the postject route (tools/build/sea.mjs): tested there (under the main line the
// file's other tests are its build's, --build-sea).
const POSTJECT_LINE = /^(22|24)\./.test(process.versions.node);
if (POSTJECT_LINE) test(`the postject route under this Node: its executable, setcap'd, runs mkmacvlan for nobody with no capability left, and never a caller's NODE_OPTIONS (root's neither)`, () => {
  const out = join(dir, 'postject');
  const b = run([NODE, join(ROOT, 'tools', 'build', 'sea.mjs'), '--out', out], { timeout: 300000 });
  assert.is(b.status, 0, b.stderr);
  assert.match(b.stderr, new RegExp(`\\(postject, Node ${process.version}\\)`));
  setcapLauncher(join(out, 'netgrant'));
  const open = join(dir, 'postject-open');
  mkdirSync(open);
  chownSync(open, NOBODY, NOBODY);
  const marker = join(open, 'marker');
  const evil = conf('postject-evil.cjs', `require('fs').writeFileSync(${JSON.stringify(marker)}, 'node');\n`);
  const r = nobody([join(out, 'bin', 'mkmacvlan'), '-c', config, 'sh', '-c', `id -u; ${STATUS}`], { NODE_OPTIONS: `--require=${evil}` });
  assert.is(r.status, 0, r.stderr);
  const [uid, ...caps] = r.stdout.trim().split('\n');
  assert.is(uid, String(NOBODY));
  for (const l of caps.filter((c) => !c.startsWith('CapBnd'))) assert.match(l, /:\s+0000000000000000$/, l);
  // Root: no AT_SECURE, so only execArgvExtension "none" keeps NODE_OPTIONS (and --node-options=) out.
  const root = run([join(out, 'bin', 'mkmacvlan'), `--node-options=--require=${evil}`], { env: { NODE_OPTIONS: `--require=${evil}` } });
  assert.is(failsWith(root, 'mkmacvlan', 100, /--node-options/), null, root.stderr);
  assert.not.ok(existsSync(marker), 'the caller\'s script never ran');
});

test('koffi.node is loaded only from beside the executable, root\'s and writable by root alone: otherwise one line, exit 111', () => {
  const alt = join(dir, 'alt');
  mkdirSync(alt, 0o755);
  linkSync(exe, join(alt, 'netgrant'));
  const k = join(alt, 'koffi.node');
  const tryIt = () => run([join(alt, 'netgrant'), 'cap-drop', '--', 'true']);
  copyFileSync(join(bin, 'koffi.node'), k);
  chmodSync(k, 0o644);
  assert.is(tryIt().status, 0, tryIt().stderr);
  const cases: [string, () => void, RegExp][] = [
    ['owned by nobody', () => chownSync(k, NOBODY, NOBODY), /koffi.node: refused: owned by uid 65534, not root/],
    ['group-writable', () => chmodSync(k, 0o664), /koffi.node: refused: writable by group or others \(mode 664\)/],
    ['a symlink', () => sh(`mv ${k} ${k}.real && ln -s ${k}.real ${k}`), /ELOOP/],
    ['in a directory others can write', () => chmodSync(alt, 0o777), /alt: refused: writable by group or others \(mode 777\)/],
    ['missing', () => sh(`rm -f ${k}`), /ENOENT/],
  ];
  for (const [name, spoil, re] of cases) {
    sh(`rm -f ${k} ${k}.real`);
    copyFileSync(join(bin, 'koffi.node'), k);
    chmodSync(k, 0o644);
    chmodSync(alt, 0o755);
    spoil();
    const r = tryIt();
    assert.is(failsWith(r, 'netgrant', 111, new RegExp(`^netgrant: fatal: load the toolkit: .*${re.source}`)), null, `${name}: ${r.stderr}`);
  }
  sh(`rm -rf ${alt}`);
});

test('bad words: no program, an unknown one, an unknown link name', () => {
  const none = run([exe]);
  assert.is(failsWith(none, 'netgrant', 100, /usage: netgrant PROGRAM/), null, none.stderr);
  const unknown = run([exe, 'rm']);
  assert.is(failsWith(unknown, 'netgrant', 100, /unknown program "rm"/), null, unknown.stderr);
  const named = run(['python3', '-c', 'import os,sys; os.execv(sys.argv[1], sys.argv[2:])', exe, '/tmp/sh', '-c', 'true']);
  assert.is(failsWith(named, 'netgrant', 100, /unknown program "sh"/), null, named.stderr);
});

test.after(() => {
  sh('ip link del sx0');
  cleanup();
});
test.run();
