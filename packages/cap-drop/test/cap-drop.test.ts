import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, readdirSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { socketpair, close, setPassCred } from '@netgrant/core';
import { run, failsWith, tempDir, NOBODY, BASE_ENV } from '../../../tools/test/lib/harness.js';

const STATUS = 'grep -E "^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):" /proc/self/status';
function status(argv: string[], env: Record<string, string> = {}): Record<string, string> {
  const r = run([...argv, 'sh', '-c', STATUS], { env });
  if (r.status !== 0) throw new Error(`exit ${r.status}: ${r.stderr}`);
  return Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(':').map((x) => x.trim()) as [string, string]));
}
const CAPS = ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb'];
const ids = (n: number) => new RegExp(`^${n}\\s+${n}\\s+${n}\\s+${n}$`);
const asNobody = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('as root, keep NET_ADMIN: all five sets hold exactly it, no_new_privs set, still uid 0', () => {
  for (const spelling of ['net_admin', 'cap_net_admin', 'CAP_NET_ADMIN', '12', 'cap_12']) {
    const s = status(['cap-drop', '-k', spelling]);
    for (const k of CAPS) assert.is(s[k], '0000000000001000', `${spelling}: ${k}`);
    assert.is(s.NoNewPrivs, '1');
    assert.match(s.Uid!, ids(0));
  }
  const two = status(['cap-drop', '-k', 'net_admin,NET_RAW']);
  for (const k of CAPS) assert.is(two[k], '0000000000003000', k);
});

test('nothing kept: every set empty', () => {
  const s = status(['cap-drop']);
  for (const k of CAPS) assert.is(s[k], '0000000000000000', k);
  assert.is(s.NoNewPrivs, '1');
  const empty = status(['cap-drop', '-k', '', '--']);
  for (const k of CAPS) assert.is(empty[k], '0000000000000000', k);
});

test('-k all keeps every capability this process is permitted (no more)', () => {
  const mine = readFileSync('/proc/self/status', 'latin1').match(/^CapPrm:\s+(\w+)$/m)![1]!;
  const s = status(['cap-drop', '-k', 'all']);
  for (const k of CAPS) assert.is(s[k], mine, k);
});

test('-u 65534 -g 65534 -G "": ids switched, no groups, no capabilities', () => {
  const s = status(['cap-drop', '-u', String(NOBODY), '-g', String(NOBODY), '-G', '']);
  assert.match(s.Uid!, ids(NOBODY));
  assert.match(s.Gid!, ids(NOBODY));
  assert.is(s.Groups, '');
  for (const k of CAPS) assert.is(s[k], '0000000000000000', k);
  assert.is(s.NoNewPrivs, '1');
});

test('uid 0 and gid 0 are real values (not "no change")', () => {
  const s = status(['cap-drop', '-u', '0', '-g', '0', '-G', '']);
  assert.match(s.Uid!, ids(0));
  assert.match(s.Gid!, ids(0));
  assert.is(s.Groups, '');
  const t = status(['cap-drop', '-u', String(NOBODY), '-g', '0', '-G', '0']);
  assert.match(t.Gid!, ids(0));
  assert.is(t.Groups, '0');
});

test('a kept capability works as the new uid (veth in the test netns); without it, EPERM', () => {
  const withCap = run(['cap-drop', '-k', 'net_admin', '-u', String(NOBODY), 'sh', '-c', 'id -u; ip link add v0 type veth peer name v1 && echo made && ip link del v0']);
  assert.is(withCap.status, 0, withCap.stderr);
  assert.is(withCap.stdout, `${NOBODY}\nmade\n`);
  const without = run(['cap-drop', '-u', String(NOBODY), 'ip', 'link', 'add', 'v2', 'type', 'veth', 'peer', 'name', 'v3']);
  assert.is.not(without.status, 0, 'no capability, no veth');
  assert.match(without.stderr, /Operation not permitted/);
  assert.is(run(['ip', 'link', 'show', 'v2']).status, 1, 'v2 must not exist');
});

test('--from-peer takes PEERUID/PEERGID; supplementary groups from the database, or none; -G overrides', () => {
  const s = status(['cap-drop', '--from-peer'], { PEERUID: '4242', PEERGID: '4343' });
  assert.match(s.Uid!, ids(4242));
  assert.match(s.Gid!, ids(4343));
  assert.is(s.Groups, '', 'uid 4242 has no user: no supplementary groups');
  for (const k of CAPS) assert.is(s[k], '0000000000000000', k);
  // nobody's database groups (getgrouplist with PEERGID): compare with id(1).
  const db = run(['id', '-G', 'nobody']).stdout.trim().split(/\s+/).sort().join(' ');
  const n = status(['cap-drop', '--from-peer'], { PEERUID: String(NOBODY), PEERGID: String(NOBODY) });
  assert.match(n.Uid!, ids(NOBODY));
  assert.is(n.Groups!.split(/\s+/).filter(Boolean).sort().join(' '), db);
  const o = status(['cap-drop', '--from-peer', '-G', '100,200'], { PEERUID: String(NOBODY), PEERGID: String(NOBODY) });
  assert.is(o.Groups, '100 200');
  const z = status(['cap-drop', '--from-peer', '-k', 'net_admin'], { PEERUID: '0', PEERGID: '0' });
  assert.match(z.Uid!, ids(0), 'PEERUID 0 is uid 0');
  assert.is(z.CapAmb, '0000000000001000');
});

test('with capabilities kept, the next program gets a secure-execution environment (NODE_*, LD_*, ...)', () => {
  const env = { NODE_OPTIONS: '--no-warnings', NODE_PATH: '/nonexistent', LD_LIBRARY_PATH: '/nonexistent', TMPDIR: '/tmp', GLIBC_TUNABLES: '', KEEPME: 'yes' };
  const envOf = (argv: string[]) => {
    const r = run([...argv, 'env'], { env });
    assert.is(r.status, 0, r.stderr);
    return Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  };
  const kept = envOf(['cap-drop', '-k', 'net_admin', '-u', String(NOBODY)]);
  for (const v of ['NODE_OPTIONS', 'NODE_PATH', 'LD_LIBRARY_PATH', 'TMPDIR', 'GLIBC_TUNABLES']) assert.is(kept[v], undefined, v);
  assert.is(kept.KEEPME, 'yes');
  assert.is(kept.PATH, BASE_ENV.PATH);
  const none = envOf(['cap-drop', '-u', String(NOBODY)]);
  for (const [k, v] of Object.entries(env)) assert.is(none[k], v, `nothing kept: ${k} untouched`);
});

test('NODE_OPTIONS cannot run code in a Node program that inherits a kept capability (notes §13)', () => {
  const { dir, cleanup } = tempDir();
  try {
    chmodSync(dir, 0o777);
    const evil = join(dir, 'evil.cjs');
    // Runs in every Node process that honours NODE_OPTIONS; acts only once the uid is nobody's.
    writeFileSync(evil, `if (process.getuid() === ${NOBODY}) require('fs').writeFileSync(${JSON.stringify(join(dir, 'ran'))}, require('fs').readFileSync('/proc/self/status', 'latin1'));\n`);
    chmodSync(evil, 0o644);
    const env = { NODE_OPTIONS: `--require ${evil}` };
    const r = run(['cap-drop', '-k', 'net_admin', '-u', String(NOBODY), 'node', '-e', 'process.exit(7)'], { env });
    assert.is(r.status, 7, r.stderr);
    assert.not.ok(existsSync(join(dir, 'ran')), 'NODE_OPTIONS reached a Node program holding CAP_NET_ADMIN');
    // Nothing kept: the variable passes (the program holds nothing worth taking).
    const plain = run(['cap-drop', '-u', String(NOBODY), 'node', '-e', 'process.exit(7)'], { env });
    assert.is(plain.status, 7, plain.stderr);
    assert.match(readFileSync(join(dir, 'ran'), 'latin1'), /CapEff:\s+0000000000000000/);
  } finally {
    cleanup();
  }
});

const bad: [string, string[], Record<string, string>, RegExp][] = [
  ['unknown capability', ['-k', 'cap_frobnicate'], {}, /-k: unknown capability "cap_frobnicate"/],
  ['capability number past cap_last_cap', ['-k', '63'], {}, /-k: unknown capability "63"/],
  ['empty element in the list', ['-k', 'net_admin,'], {}, /-k: unknown capability ""/],
  ['unknown user', ['-u', 'no-such-user-q'], {}, /unknown user/],
  ['uid out of range', ['-u', '4294967295'], {}, /-u: uid out of range/],
  ['unknown group', ['-u', '0', '-g', 'no-such-group-q'], {}, /unknown group/],
  ['uid without a user and no -g', ['-u', '4242'], {}, /no such user in the database, give -g/],
  ['-g alone', ['-g', '0'], {}, /-g needs -u/],
  ['-G alone', ['-G', '1'], {}, /-G needs -u/],
  ['-G with a bad gid', ['-u', '0', '-g', '0', '-G', '1,x-y'], {}, /-G: unknown group "x-y"/],
  ['-G with an empty element', ['-u', '0', '-g', '0', '-G', '1,,2'], {}, /-G: unknown group ""/],
  ['--from-peer without PEERUID', ['--from-peer'], {}, /PEERUID not set/],
  ['--from-peer without PEERGID', ['--from-peer'], { PEERUID: '1' }, /PEERGID not set/],
  ['--from-peer with a non-numeric PEERUID', ['--from-peer'], { PEERUID: '0x10', PEERGID: '0' }, /PEERUID has an invalid value "0x10"/],
  ['--from-peer with an empty PEERUID', ['--from-peer'], { PEERUID: '', PEERGID: '0' }, /PEERUID has an invalid value ""/],
  ['--from-peer with PEERUID -1', ['--from-peer'], { PEERUID: '-1', PEERGID: '0' }, /PEERUID has an invalid value "-1"/],
  ['--from-peer with PEERUID 2^32-1', ['--from-peer'], { PEERUID: '4294967295', PEERGID: '0' }, /PEERUID has an invalid value/],
  ['--from-peer with -u', ['--from-peer', '-u', '0'], { PEERUID: '1', PEERGID: '1' }, /excludes -u/],
  ['unknown option', ['--keep-all'], {}, /unknown option --keep-all/],
  ['unknown short option', ['-x'], {}, /unknown option -x/],
];
for (const [name, args, env, re] of bad) {
  test(`bad input: ${name} → 100, one line, nothing exec'd`, () => {
    const r = run(['cap-drop', ...args, 'sh', '-c', 'echo EXECUTED'], { env });
    assert.is(failsWith(r, 'cap-drop', 100, re), null, r.stderr);
    assert.is(r.stdout, '');
  });
}

test('bad input: an option value missing at the end of argv → 100', () => {
  const r = run(['cap-drop', '-k']);
  assert.is(failsWith(r, 'cap-drop', 100, /option -k requires a value/), null, r.stderr);
});

test('a failing step exits 111 and execs nothing', () => {
  // As nobody: setgroups/setresuid(0) are EPERM.
  const r = run([...asNobody, 'cap-drop', '-u', '0', '-g', '0', '-G', '', 'sh', '-c', 'echo EXECUTED']);
  assert.is(failsWith(r, 'cap-drop', 111, /EPERM/), null, r.stderr);
  assert.is(r.stdout, '');
  // Keeping a capability this process is not permitted.
  const k = run([...asNobody, 'cap-drop', '-k', 'net_admin', 'sh', '-c', 'echo EXECUTED']);
  assert.is(failsWith(k, 'cap-drop', 111, /keep cap_net_admin: .*EPERM/), null, k.stderr);
  assert.is(k.stdout, '');
  // No CAP_SETPCAP: the bounding set cannot be emptied, so cap-drop refuses to go on.
  const b = run([...asNobody, 'cap-drop', 'sh', '-c', 'echo EXECUTED']);
  assert.is(failsWith(b, 'cap-drop', 111, /bounding set.*EPERM/), null, b.stderr);
  assert.is(b.stdout, '');
  // Only -u 0 as root after setpriv took CAP_SETUID away (setresuid, not setgroups, fails).
  const u = run(['setpriv', '--inh-caps=-all', '--bounding-set=-setuid', 'cap-drop', '-u', String(NOBODY), '-G', '', 'sh', '-c', 'echo EXECUTED']);
  assert.is(failsWith(u, 'cap-drop', 111, /set uid to .*EPERM/), null, u.stderr);
  assert.is(u.stdout, '');
});

test('exec failures: 127 not found, 126 not executable', () => {
  const nf = run(['cap-drop', '--', '/nonexistent/prog']);
  assert.is(failsWith(nf, 'cap-drop', 127, /unable to exec \/nonexistent\/prog/), null, nf.stderr);
  const ne = run(['cap-drop', '--', '/etc/passwd']);
  assert.is(failsWith(ne, 'cap-drop', 126, /unable to exec \/etc\/passwd/), null, ne.stderr);
  assert.is(run(['cap-drop', '-k', 'net_admin']).status, 0, 'empty rest: exit 0');
});

test('the next netgrant link is always a real exec: no Node thread keeps a capability', async () => {
  // peer-check after cap-drop waits (up to 5 s) for a socketpair peer's first
  // data. While it waits, look at the process: its command line must be
  // peer-check's own (an exec happened) and every one of its threads must
  // have dropped everything (in-process, Node's other threads would not).
  const [mine, theirs] = socketpair();
  const child = spawn('cap-drop', ['-u', String(NOBODY), '-G', '', 'peer-check', '-a', '-t', '5000', 'sh', '-c', 'echo "$PEERUID"'], {
    env: BASE_ENV,
    stdio: [theirs, 'pipe', 'pipe'],
  });
  close(theirs);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const done = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  try {
    let cmdline = '';
    for (let i = 0; i < 200; i++) {
      cmdline = readFileSync(`/proc/${child.pid}/cmdline`, 'latin1').split('\0').join(' ');
      if (/\/peer-check -a/.test(cmdline)) break;
      await sleep(25);
    }
    assert.match(cmdline, /\/peer-check -a -t 5000 sh/, `not exec'd: ${cmdline}`);
    // Node starts its other threads soon after the exec; on a loaded machine later than 100 ms.
    let tasks: string[] = [];
    for (let i = 0; i < 100 && tasks.length < 2; i++) {
      await sleep(20);
      tasks = readdirSync(`/proc/${child.pid}/task`);
    }
    assert.ok(tasks.length > 1, 'Node has several threads');
    for (const t of tasks) {
      const st = readFileSync(`/proc/${child.pid}/task/${t}/status`, 'latin1');
      for (const k of CAPS) assert.match(st, new RegExp(`^${k}:\\s+0000000000000000$`, 'm'), `thread ${t} ${k}`);
      assert.match(st, new RegExp(`^Uid:\\s+${NOBODY}\\s+${NOBODY}`, 'm'), `thread ${t} uid`);
    }
    setPassCred(mine, true);
    writeSync(mine, 'x');
    assert.is(await done, 0, out);
    assert.is(out, '0\n', 'the peer (this test, root) was learned and allowed');
  } finally {
    child.kill('SIGKILL');
    close(mine);
  }
});

test.run();
