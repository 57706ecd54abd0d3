import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readSync, openSync } from 'node:fs';
import { socketpair, recvMessage, recvByte, decodeEnv, close, listOpenFds } from '@netgrant/core';
import { runWithFds, failsWith, pipeWith, SHOW_FDS, PYTHON, PATH, BASE_ENV } from '../../../tools/test/lib/harness.js';

const readAll = (fd: number) => {
  const b = Buffer.alloc(200);
  return b.subarray(0, readSync(fd, b)).toString();
};

test('sends fds and the named variables in one framed message, closes them, exits 0', async () => {
  const [a, b] = socketpair();
  const r1 = pipeWith('first');
  const r2 = pipeWith('second');
  const r = runWithFds(['fd-send', '-s', '3', '-d', '4,5', '-e', 'TAPNAME', '-e', 'A,B'], { 3: b, 4: r1, 5: r2 }, { env: { PATH, TAPNAME: 'tap7', A: '', B: 'x=y z' } });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stderr, '');
  const m = await recvMessage(a, { timeoutMs: 1000 });
  assert.equal(decodeEnv(m.payload), [['TAPNAME', 'tap7'], ['A', ''], ['B', 'x=y z']]);
  assert.equal(m.fds.map(readAll), ['first', 'second']);
  [a, b, r1, r2, ...m.fds].forEach(close);
});

test('a Python client receives fds and metadata (independent framing)', async () => {
  const py = `
import socket, struct, os, subprocess, json, sys
a, b = socket.socketpair()
r, w = os.pipe(); os.write(w, b'via python'); os.close(w)
os.dup2(b.fileno(), 10); os.dup2(r, 11)
p = subprocess.run(['fd-send', '-s', '10', '-d', '11', '-e', 'WHO'], pass_fds=[10, 11], env=dict(os.environ, WHO='netgrant'))
os.close(10); os.close(11); b.close(); os.close(r)
hdr, fds, _, _ = socket.recv_fds(a, 6, 4)
ln, nf = struct.unpack('>IH', hdr)
payload = a.recv(ln, socket.MSG_WAITALL)
print(json.dumps({'rc': p.returncode, 'nf': nf, 'fds': len(fds), 'payload': payload.decode(), 'data': os.read(fds[0], 100).decode()}))
`;
  const r = spawnSync(PYTHON, ['-c', py], { env: BASE_ENV, encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout), { rc: 0, nf: 1, fds: 1, payload: 'WHO=netgrant\0', data: 'via python' });
});

test('--byte speaks the one-byte protocol', async () => {
  const [a, b] = socketpair();
  const r1 = pipeWith('tapfd');
  const r = runWithFds(['fd-send', '-s', '3', '-d', '4', '--byte', '0'], { 3: b, 4: r1 });
  assert.is(r.status, 0, r.stderr);
  const fd = await recvByte(a, 0, 1000);
  assert.is(readAll(fd), 'tapfd');
  [a, b, r1, fd].forEach(close);
});

test('execs the next program without the sent fds (or with them, -k)', async () => {
  for (const [flag, expect] of [[[], '0 1 2 3 '], [['-k'], '0 1 2 3 4 ']] as const) {
    const [a, b] = socketpair();
    const r1 = pipeWith('x');
    const r = runWithFds(['fd-send', '-s', '3', '-d', '4', ...flag, 'sh', '-c', SHOW_FDS], { 3: b, 4: r1 });
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stdout.trimEnd(), expect.trimEnd());
    const m = await recvMessage(a, { timeoutMs: 1000 });
    [a, b, r1, ...m.fds].forEach(close);
  }
});

const bad: [string, string[], Record<number, () => number>, Record<string, string>, number, RegExp][] = [
  ['no -s', ['-d', '4'], {}, {}, 100, /option -s is required/],
  ['non-numeric -s', ['-s', 'x'], {}, {}, 100, /-s: not a number/],
  ['negative fd', ['-s', '-1'], {}, {}, 100, /-s: not a number/],
  ['-s not open', ['-s', '9'], {}, {}, 100, /-s: fd 9 is not open/],
  ['-s not a socket', ['-s', '3'], { 3: () => openSync('/dev/null', 'r') }, {}, 100, /-s: fd 3 is not a unix socket/],
  ['-d not open', ['-s', '3', '-d', '7'], { 3: () => socketpair()[0] }, {}, 100, /-d: fd 7 is not open/],
  ['-d is the socket', ['-s', '3', '-d', '3'], { 3: () => socketpair()[0] }, {}, 100, /is the socket/],
  ['bad fd list', ['-s', '3', '-d', '4,,5'], { 3: () => socketpair()[0] }, {}, 100, /not a number/],
  ['bad variable name', ['-s', '3', '-e', '1X'], { 3: () => socketpair()[0] }, {}, 100, /invalid variable name/],
  ['unset variable', ['-s', '3', '-e', 'NOPE'], { 3: () => socketpair()[0] }, {}, 100, /variable NOPE is not set/],
  ['--byte with two fds', ['-s', '3', '-d', '4,5', '--byte', '0'], {}, {}, 100, /exactly one fd/],
  ['--byte out of range', ['-s', '3', '-d', '4', '--byte', '256'], {}, {}, 100, /out of range/],
  ['unknown option', ['-q'], {}, {}, 100, /unknown option -q/],
];
for (const [name, args, fdmakers, env, code, re] of bad) {
  test(`bad input: ${name}`, async () => {
    const fds = Object.fromEntries(Object.entries(fdmakers).map(([n, mk]) => [n, mk()]));
    const r = runWithFds(['fd-send', ...args], fds, { env: { PATH, ...env } });
    const err = failsWith(r, 'fd-send', code, re);
    assert.is(err, null, err ?? '');
    Object.values(fds).forEach((fd) => close(fd));
  });
}

test('peer already gone: EPIPE, exit 111, no SIGPIPE death', async () => {
  const [a, b] = socketpair();
  close(a);
  const r1 = pipeWith('x');
  const r = runWithFds(['fd-send', '-s', '3', '-d', '4'], { 3: b, 4: r1 });
  const err = failsWith(r, 'fd-send', 111, /send on fd 3: Broken pipe \(EPIPE\)/);
  assert.is(err, null, err ?? '');
  [b, r1].forEach(close);
});

test('no fd of this test process leaked', async () => {
  // Every case above closed what it opened; the harness itself holds 0-2 plus Node's own.
  assert.ok(listOpenFds().length < 30);
});

test.run();
