import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run, failsWith, NOBODY } from '../../../tools/test/lib/harness.js';

const STATUS = 'grep -E "^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):" /proc/self/status';
function status(argv: string[], env: Record<string, string> = {}): Record<string, string> {
  const r = run([...argv, 'sh', '-c', STATUS], { env });
  if (r.status !== 0) throw new Error(r.stderr);
  return Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(':').map((x) => x.trim()) as [string, string]));
}
const CAPS = ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb'];

test('as root, keep NET_ADMIN: all five sets hold exactly it, no_new_privs set', () => {
  const s = status(['cap-drop', '-k', 'net_admin']);
  for (const k of CAPS) assert.is(s[k], '0000000000001000', k);
  assert.is(s.NoNewPrivs, '1');
  assert.is(s.Uid!.split(/\s+/)[0], '0');
});

test('nothing kept: every set empty', () => {
  const s = status(['cap-drop']);
  for (const k of CAPS) assert.is(s[k], '0000000000000000', k);
  assert.is(s.NoNewPrivs, '1');
});

test('switch to 65534 with no groups; a kept capability still works as that uid', () => {
  const s = status(['cap-drop', '-u', String(NOBODY), '-g', String(NOBODY), '-G', '']);
  assert.match(s.Uid!, new RegExp(`^${NOBODY}\\s+${NOBODY}\\s+${NOBODY}\\s+${NOBODY}$`));
  assert.match(s.Gid!, new RegExp(`^${NOBODY}\\s+${NOBODY}\\s+${NOBODY}\\s+${NOBODY}$`));
  assert.is(s.Groups, '');
  for (const k of CAPS) assert.is(s[k], '0000000000000000', k);
  const withCap = run(['cap-drop', '-k', 'cap_net_admin', '-u', 'nobody', '-G', '', 'sh', '-c', 'id -u; ip link add cd0 type veth peer name cd1 && echo made && ip link del cd0']);
  assert.is(withCap.status, 0, withCap.stderr);
  assert.is(withCap.stdout, `${NOBODY}\nmade\n`);
  const without = run(['cap-drop', '-u', 'nobody', '-G', '', 'ip', 'link', 'add', 'cd2', 'type', 'veth', 'peer', 'name', 'cd3']);
  assert.is.not(without.status, 0, 'no capability, no veth');
});

test('--from-peer takes PEERUID/PEERGID; supplementary groups from the database, or none', () => {
  const s = status(['cap-drop', '--from-peer'], { PEERUID: '4242', PEERGID: '4343' });
  assert.match(s.Uid!, /^4242\s+4242\s+4242\s+4242$/);
  assert.match(s.Gid!, /^4343\s+4343\s+4343\s+4343$/);
  assert.is(s.Groups, '', 'uid 4242 has no user: no supplementary groups');
  const n = status(['cap-drop', '--from-peer', '-G', '100,200'], { PEERUID: String(NOBODY), PEERGID: String(NOBODY) });
  assert.is(n.Groups, '100 200');
});

const bad: [string, string[], Record<string, string>, number, RegExp][] = [
  ['unknown capability', ['-k', 'cap_frobnicate'], {}, 100, /cap_frobnicate/],
  ['unknown user', ['-u', 'no-such-user-q'], {}, 100, /unknown user/],
  ['unknown group', ['-u', '0', '-g', 'no-such-group-q'], {}, 100, /unknown group/],
  ['uid without a user and no -g', ['-u', '4242'], {}, 100, /no such user in the database, give -g/],
  ['-g alone', ['-g', '0'], {}, 100, /-g needs -u/],
  ['-G alone', ['-G', '1'], {}, 100, /-G needs -u and -g/],
  ['bad -G', ['-u', '0', '-g', '0', '-G', '1,x-y'], {}, 100, /unknown group/],
  ['--from-peer without PEERUID', ['--from-peer'], {}, 100, /PEERUID not set/],
  ['--from-peer with a bad PEERUID', ['--from-peer'], { PEERUID: '0x10', PEERGID: '0' }, 100, /PEERUID has an invalid value/],
  ['--from-peer with -u', ['--from-peer', '-u', '0'], { PEERUID: '1', PEERGID: '1' }, 100, /excludes -u/],
  ['unknown option', ['--keep-all'], {}, 100, /unknown option --keep-all/],
];
for (const [name, args, env, code, re] of bad) {
  test(`bad input: ${name} (nothing exec'd)`, () => {
    const r = run(['cap-drop', ...args, 'sh', '-c', 'echo EXECUTED'], { env });
    assert.is(failsWith(r, 'cap-drop', code, re), null, r.stderr);
    assert.is(r.stdout, '');
  });
}

test('a failing step exits 111 and execs nothing (as nobody, setresuid(0) is EPERM)', () => {
  const r = run(['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'cap-drop', '-u', '0', '-g', '0', 'sh', '-c', 'echo EXECUTED']);
  assert.is(failsWith(r, 'cap-drop', 111, /EPERM/), null, r.stderr);
  assert.is(r.stdout, '');
  const k = run(['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'cap-drop', '-k', 'net_admin', 'sh', '-c', 'echo EXECUTED']);
  assert.is(failsWith(k, 'cap-drop', 111, /EPERM/), null, k.stderr);
});

test('cap-drop is always followed by a real exec (never in-process)', () => {
  // fd-send after cap-drop would run in-process if allowed; its argv in /proc shows the exec.
  const r = run(['cap-drop', 'peer-check', '-E', '-a', 'sh', '-c', 'cat /proc/$PPID/cmdline 2>/dev/null | tr "\\0" " "; echo'], { env: { PROTO: 'IPC', IPCREMOTEEUID: '0', IPCREMOTEEGID: '0' } });
  assert.is(r.status, 0, r.stderr);
});

test.run();
