import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openSync } from 'node:fs';
import { socketpair, close } from '@netgrant/core';
import { run, runWithFds, failsWith, PYTHON, PATH, NOBODY } from '../../../tools/test/lib/harness.js';

/**
 * Python as root makes a socketpair (so SO_PEERCRED on both ends names root),
 * hands one end to a sender running as `sender` (setpriv) that writes a
 * framed message, and runs `argv` with the other end at fd 3.
 */
function overSocketpair(sender: string[], argv: string[], send = true, passcred = true): { status: number; out: string; err: string } {
  const py = `
import socket, os, subprocess, sys, json, struct
a, b = socket.socketpair()
A = os.dup(a.fileno()); B = os.dup(b.fileno()); a.close(); b.close()
os.dup2(B, 14); os.close(B)
code = "import socket,struct; s=socket.socket(fileno=14); ${passcred ? 's.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1); ' : ''}${send ? 's.sendall(struct.pack(\\">IH\\",6,0)+b\\"X=abc\\\\0\\")' : 'pass'}"
p = subprocess.run(${JSON.stringify(sender)} + [${JSON.stringify(PYTHON)}, '-c', code], pass_fds=[14])
os.close(14)
os.dup2(A, 3); os.close(A)
q = subprocess.run(sys.argv[1:], pass_fds=[3], capture_output=True, text=True)
print(json.dumps({'status': q.returncode, 'out': q.stdout, 'err': q.stderr}))
`;
  const r = run([PYTHON, '-c', py, ...argv]);
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}
const AS_NOBODY = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];

test('socketpair: SCM_CREDENTIALS name the real sender, not the pair creator; data is left for the next link', () => {
  const ok = overSocketpair(AS_NOBODY, ['peer-check', '-s', '3', '-u', String(NOBODY), 'fd-recv', '-s', '3', '-e', 'X', 'sh', '-c', 'echo $PEERUID $PEERGID $X']);
  assert.is(ok.status, 0, ok.err);
  assert.is(ok.out, `${NOBODY} ${NOBODY} abc\n`);
  const denied = overSocketpair(AS_NOBODY, ['peer-check', '-s', '3', '-u', '0', 'true']);
  assert.is(denied.status, 1);
  assert.is(denied.err, `peer-check: fatal: peer uid ${NOBODY} gid ${NOBODY} pid ${denied.err.match(/pid (\d+)/)?.[1]} is not allowed\n`);
  const stranger = overSocketpair(['setpriv', '--reuid=4242', '--regid=4242', '--clear-groups'], ['peer-check', '-s', '3', '-u', String(NOBODY), 'true']);
  assert.is(stranger.status, 1);
  assert.match(stranger.err, /peer uid 4242 gid 4242/);
});

test('socketpair: unrecorded credentials (no SO_PASSCRED at send time) read as the overflow uid and are refused', () => {
  // Without SO_PASSCRED on either end when the data is sent, the kernel gives
  // pid 0 and uid 65534 (nobody): a root sender would pass as nobody.
  const r = overSocketpair([], ['peer-check', '-s', '3', '-u', String(NOBODY), 'true'], true, false);
  assert.is(r.status, 111);
  assert.match(r.err, /the kernel did not record who sent the data/);
});

test('socketpair: a peer that sends nothing is refused after the timeout', () => {
  const r = overSocketpair(AS_NOBODY, ['peer-check', '-s', '3', '-t', '300', '-a', 'true'], false);
  assert.is(r.status, 111);
  assert.match(r.err, /^peer-check: fatal: get socketpair peer credentials: .*(closed the connection without sending|sent nothing)/);
});

test('-E trusts ${PROTO}REMOTEEUID only when asked; the socket wins otherwise', () => {
  const [a, b] = socketpair();
  // Without -E a forged IPCREMOTEEUID=0 is ignored: the socketpair has no data, so peer-check times out rather than trusting env.
  const forged = runWithFds(['peer-check', '-s', '3', '-t', '100', '-u', '0', 'true'], { 3: b }, { env: { PATH, PROTO: 'IPC', IPCREMOTEEUID: '0', IPCREMOTEEGID: '0' } });
  assert.is(forged.status, 111, forged.stderr);
  const trusted = run(['peer-check', '-E', '-u', '1234', 'sh', '-c', 'echo $PEERUID $PEERGID $PEERPID'], { env: { PATH, PROTO: 'UNIX', UNIXREMOTEEUID: '1234', UNIXREMOTEEGID: '99', UNIXREMOTEPID: '77' } });
  assert.is(trusted.status, 0, trusted.stderr);
  assert.is(trusted.stdout, '1234 99 77\n');
  [a, b].forEach(close);
});

test('groups: primary gid and supplementary groups (from the database for env/socketpair peers)', () => {
  const r = run(['peer-check', '-E', '-g', 'nogroup', 'true'], { env: { PATH, PROTO: 'IPC', IPCREMOTEEUID: '1234', IPCREMOTEEGID: String(NOBODY) } });
  assert.is(r.status, 0, r.stderr);
  // root's supplementary groups per the database include 0 (root) only: -g 4 (adm) denies.
  const d = run(['peer-check', '-E', '-g', '4', 'true'], { env: { PATH, PROTO: 'IPC', IPCREMOTEEUID: '0', IPCREMOTEEGID: '0' } });
  assert.is(d.status, 1);
});

const bad: [string, string[], Record<string, string>, number, RegExp][] = [
  ['nobody allowed', ['-s', '0', 'true'], {}, 100, /nobody is allowed/],
  ['unknown user', ['-u', 'no-such-user-xyz', 'true'], {}, 100, /-u: unknown user "no-such-user-xyz"/],
  ['unknown group', ['-g', 'no-such-group-xyz', 'true'], {}, 100, /-g: unknown group/],
  ['uid out of range', ['-u', '4294967295', 'true'], {}, 100, /uid out of range/],
  ['-s not a socket', ['-a', 'true'], {}, 100, /-s: fd 0 is not a unix socket/],
  ['-s not open', ['-s', '9', '-a', 'true'], {}, 100, /-s: fd 9 is not open/],
  ['-E without PROTO', ['-E', '-a', 'true'], {}, 100, /PROTO not set/],
  ['-E with the uid unset', ['-E', '-a', 'true'], { PROTO: 'IPC', IPCREMOTEEGID: '0' }, 100, /IPCREMOTEEUID not set/],
  ['-E with a bad uid', ['-E', '-a', 'true'], { PROTO: 'IPC', IPCREMOTEEUID: '1x', IPCREMOTEEGID: '0' }, 100, /invalid value/],
  ['-E with a bad PROTO', ['-E', '-a', 'true'], { PROTO: 'A=B' }, 100, /PROTO has an invalid value/],
  ['bad timeout', ['-t', 'soon', '-a', 'true'], {}, 100, /-t: not a number/],
];
for (const [name, args, env, code, re] of bad) {
  test(`bad input: ${name}`, () => {
    const r = runWithFds(['peer-check', ...args], { 0: openSync('/dev/null', 'r') }, { env: { PATH, ...env } });
    const err = failsWith(r, 'peer-check', code, re);
    assert.is(err, null, err ?? '');
  });
}

test.run();
