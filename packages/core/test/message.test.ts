// SCM_RIGHTS and the framing, round-tripped against an independent
// implementation (Python's socket.send_fds/recv_fds), plus every way a
// message can be bad: each must close the fds that arrived.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync, readSync } from 'node:fs';
import {
  socketpair, sendMessage, recvMessage, encodeEnv, decodeEnv, sendmsg, sendByte, recvByte, encodeHeader,
  close, listOpenFds, setPassCred, peerCred, peerPidfd, peerGroups, isUnixSocket, isUnnamedPair, ProtocolError,
} from '@netgrant/core';
import { PYTHON, pipeWith, rejects } from '../../../tools/test/lib/harness.js';

const PY_RECV = `
import socket, struct, os, sys, json
s = socket.socket(fileno=3)
def exact(n, maxfds):
    buf, fds = b'', []
    while len(buf) < n:
        msg, got, flags, _ = socket.recv_fds(s, n - len(buf), maxfds)
        if not msg: raise SystemExit('eof')
        buf += msg; fds += got; maxfds = 0
    return buf, fds
hdr, fds = exact(6, 10)
ln, nf = struct.unpack('>IH', hdr)
payload, _ = exact(ln, 0) if ln else (b'', [])
texts = [os.read(fd, 100).decode() for fd in fds]
print(json.dumps({'n': nf, 'fds': len(fds), 'env': [e.decode() for e in payload.split(b'\\0')[:-1]], 'texts': texts}))
`;

const PY_SEND = `
import socket, struct, os, sys
s = socket.socket(fileno=3)
r1, w1 = os.pipe(); r2, w2 = os.pipe()
os.write(w1, b'one'); os.write(w2, b'two'); os.close(w1); os.close(w2)
payload = b'A=1\\0B=two words\\0'
socket.send_fds(s, [struct.pack('>IH', len(payload), 2) + payload], [r1, r2])
`;


test('Node sends, Python receives (framing + 2 fds)', async () => {
  const [a, b] = socketpair();
  const f1 = pipeWith('hello');
  const f2 = pipeWith('world');
  sendMessage(a, encodeEnv([['TAPNAME', 'tap0'], ['X', 'a b=c']]), [f1, f2]);
  close(f1);
  close(f2);
  const r = spawnSync(PYTHON, ['-c', PY_RECV], { stdio: ['ignore', 'pipe', 'pipe', b], encoding: 'utf8' });
  close(a);
  close(b);
  assert.is(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout), { n: 2, fds: 2, env: ['TAPNAME=tap0', 'X=a b=c'], texts: ['hello', 'world'] });
});

test('Python sends, Node receives', async () => {
  const [a, b] = socketpair();
  const r = spawnSync(PYTHON, ['-c', PY_SEND], { stdio: ['ignore', 'pipe', 'pipe', b], encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const m = await recvMessage(a, { timeoutMs: 2000 });
  assert.equal(decodeEnv(m.payload), [['A', '1'], ['B', 'two words']]);
  assert.is(m.fds.length, 2);
  const buf = Buffer.alloc(10);
  assert.is(buf.subarray(0, readSync(m.fds[0]!, buf)).toString(), 'one');
  assert.is(buf.subarray(0, readSync(m.fds[1]!, buf)).toString(), 'two');
  m.fds.forEach(close);
  close(a);
  close(b);
});

test('received fds are close-on-exec', async () => {
  const [a, b] = socketpair();
  const f = pipeWith('x');
  sendMessage(a, Buffer.alloc(0), [f]);
  const m = await recvMessage(b);
  const flags = readFileSync(`/proc/self/fdinfo/${m.fds[0]}`, 'utf8').match(/flags:\s+(\d+)/)![1]!;
  assert.ok((parseInt(flags, 8) & 0o2000000) !== 0, `flags ${flags}`);
  [a, b, f, ...m.fds].forEach(close);
});

/** Run a bad-message case: `send` writes to a, recvMessage on b must throw and leak nothing. */
function badCase(name: string, send: (a: number) => void, expect: RegExp, opts = {}) {
  test(`bad message: ${name}`, async () => {
    const [a, b] = socketpair();
    const before = listOpenFds();
    send(a);
    try {
      await recvMessage(b, { timeoutMs: 300, ...opts });
      assert.unreachable('should throw');
    } catch (e) {
      assert.instance(e, ProtocolError);
      assert.match((e as Error).message, expect);
    }
    assert.equal(listOpenFds(), before, 'no received fd left open');
    close(a);
    close(b);
  });
}
const withPipes = (n: number, fn: (fds: number[]) => void) => {
  const fds = Array.from({ length: n }, () => pipeWith('p'));
  fn(fds);
  fds.forEach(close);
};

badCase('short header then close', (a) => withPipes(1, (f) => { sendmsg(a, Buffer.from([0, 0, 0]), f); }), /timed out|closed/);
badCase('payload shorter than announced', (a) => sendmsg(a, Buffer.concat([encodeHeader(10, 0), Buffer.from('abc')])), /timed out waiting for the payload/);
badCase('oversized payload', (a) => withPipes(1, (f) => sendmsg(a, encodeHeader(1 << 20, 1), f)), /exceeds the limit/);
badCase('more fds than allowed (MSG_CTRUNC)', (a) => withPipes(3, (f) => sendmsg(a, encodeHeader(0, 3), f)), /more than 2 fds|announces 3/, { maxFds: 2 });
badCase('fd count differs from header', (a) => withPipes(1, (f) => sendmsg(a, encodeHeader(0, 2), f)), /announces 2 fds but carried 1/);
badCase('fds after the first byte', (a) => withPipes(1, (f) => {
  sendmsg(a, encodeHeader(4, 0));
  sendmsg(a, Buffer.from('A=1\0'), f);
}), /after the first byte/);
badCase('timeout with nothing sent', () => undefined, /timed out/);

test('peer closes before sending: EPIPE-class error', async () => {
  const [a, b] = socketpair();
  close(a);
  await rejects(recvMessage(b, { timeoutMs: 500 }), /closed the connection before sending/);
  close(b);
});

test('decodeEnv is strict', async () => {
  assert.throws(() => decodeEnv(Buffer.from('A=1')), /NUL-terminated/);
  assert.throws(() => decodeEnv(Buffer.from('=1\0')), /bad entry/);
  assert.throws(() => decodeEnv(Buffer.from('NOEQ\0')), /bad entry/);
  assert.throws(() => decodeEnv(Buffer.from('A=1\0A=2\0')), /twice/);
  assert.equal(decodeEnv(Buffer.from('A=\0B==\0')), [['A', ''], ['B', '=']]);
  assert.throws(() => encodeEnv([['1A', 'x']]), /invalid variable name/);
});

test('one-byte mode: right byte + one fd; wrong byte or no fd is EPROTO and closes', async () => {
  const [a, b] = socketpair();
  const f = pipeWith('z');
  sendByte(a, 0, f);
  const got = await recvByte(b, 0, 1000);
  close(got);
  const before = listOpenFds();
  sendByte(a, 0x41, f);
  await rejects(recvByte(b, 0, 1000), /expected byte 0, got 65/);
  sendmsg(a, Buffer.from([0]));
  await rejects(recvByte(b, 0, 1000), /expected one fd, got 0/);
  assert.equal(listOpenFds(), before);
  close(a);
  await rejects(recvByte(b, 0, 1000), /closed/);
  [b, f].forEach(close);
});

test('SCM_CREDENTIALS name the sender; SO_PEERCRED on a socketpair names its creator', async () => {
  const [a, b] = socketpair();
  setPassCred(a, true);
  assert.ok(isUnixSocket(a));
  assert.ok(isUnnamedPair(a));
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', PYTHON, '-c',
    'import socket,struct; s=socket.socket(fileno=3); s.sendall(struct.pack(">IH",0,0))'], { stdio: ['ignore', 'pipe', 'pipe', b] });
  assert.is(r.status, 0, String(r.stderr));
  const m = await recvMessage(a, { timeoutMs: 1000 });
  assert.is(m.creds?.uid, 65534);
  assert.is(m.creds?.gid, 65534);
  assert.is(peerCred(a).uid, 0, 'SO_PEERCRED names the creator (root)');
  assert.is(peerCred(a).pid, process.pid);
  [a, b].forEach(close);
});

test('SO_PEERPIDFD gives a pidfd for the peer (close-on-exec); SO_PEERGROUPS the groups', async () => {
  const [a, b] = socketpair();
  const pidfd = peerPidfd(a);
  assert.ok(pidfd !== null, 'this kernel has SO_PEERPIDFD');
  const info = readFileSync(`/proc/self/fdinfo/${pidfd}`, 'utf8');
  assert.match(info, new RegExp(`Pid:\\s+${process.pid}`));
  assert.ok((parseInt(info.match(/flags:\s+(\d+)/)![1]!, 8) & 0o2000000) !== 0);
  close(pidfd!);
  assert.ok(Array.isArray(peerGroups(a)));
  close(a);
  assert.throws(() => peerPidfd(a), /EBADF/);
  close(b);
});

test('isUnixSocket is false for a pipe-like non-socket', async () => {
  const fd = require('node:fs').openSync('/dev/null', 'r');
  assert.is(isUnixSocket(fd), false);
  close(fd);
  assert.throws(() => isUnixSocket(fd), /EBADF/);
});

test.run();
