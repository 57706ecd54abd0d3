import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readSync } from 'node:fs';
import { spawnOnSocketpair, sendMessage, recvMessage, decodeEnv, close, encodeEnv } from '@netgrant/core';
import { run, failsWith, BASE_ENV, NOBODY } from '../../../tools/test/lib/harness.js';

const block = (...words: string[]) => [...words.map((w) => ` ${w}`), ''];
const SERVER = block('peer-check', '-s', '0', '-u', String(NOBODY), 'redirfd', '-r', '3', '/etc/os-release', 'fd-send', '-s', '1', '-d', '3', '-e', 'PEERUID');
const asUid = (uid: number) => ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'];

test('the server chain runs on fds 0/1, the client gets 6/7; peer-check sees the real sender', async () => {
  const r = run(['ipc-pair', ...SERVER, ...asUid(NOBODY), 'fd-send', '-s', '7', 'fd-recv', '-s', '6', '-d', '3', '-e', 'PEERUID', 'sh', '-c', 'echo "$(id -u) $PEERUID $(head -c 12 <&3)"']);
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, `${NOBODY} ${NOBODY} PRETTY_NAME=\n`);
});

test('a sender the server does not allow gets nothing', async () => {
  const r = run(['ipc-pair', ...SERVER, ...asUid(4242), 'fd-send', '-s', '7', 'fd-recv', '-s', '6', '-d', '3', 'sh', '-c', 'echo reached']);
  assert.is(r.status, 111);
  assert.is(r.stdout, '');
  assert.match(r.stderr, /peer-check: fatal: peer uid 4242 gid 4242 pid \d+ is not allowed/);
});

test('-d places the client end at one fd', async () => {
  const r = run(['ipc-pair', '-d', '9', ...block('sh', '-c', 'echo hi >&1'), 'sh', '-c', 'head -c 3 <&9']);
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, 'hi\n');
});

test('from Node: spawnOnSocketpair + sendMessage/recvMessage', async () => {
  const pair = await spawnOnSocketpair(['peer-check', '-a', 'fd-recv', '-s', '0', '-e', 'WANT', 'sh', '-c', 'exec 3</etc/hostname; exec fd-send -s 1 -d 3 -e WANT -e PEERUID'], BASE_ENV);
  sendMessage(pair.fd, encodeEnv([['WANT', 'x']]));
  // Four links, in exec-only mode four Node starts: seconds each on a loaded machine (CI under Node 26 timed out at 5 s).
  const m = await recvMessage(pair.fd, { timeoutMs: 30000 });
  assert.equal(decodeEnv(m.payload), [['WANT', 'x'], ['PEERUID', '0']]);
  assert.is(m.fds.length, 1);
  const buf = Buffer.alloc(64);
  assert.ok(readSync(m.fds[0]!, buf) > 0);
  m.fds.forEach(close);
  close(pair.fd);
  await new Promise((r) => pair.child.once('close', r));
});

test('from Node: a program that does not exist is an error, not a hang', async () => {
  try {
    await spawnOnSocketpair(['/nonexistent/chain']);
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /start \/nonexistent\/chain: .*ENOENT/);
  }
});

for (const [name, args, re] of [
  ['no block', ['true'], /expected a block/],
  ['unterminated block', [' true'], /unterminated block/],
  ['empty block', ['', 'true'], /empty server block/],
  ['no client', [' true', ''], /no client program/],
  ['bad -d', ['-d', 'x', ' true', '', 'true'], /-d: not a number/],
] as const) {
  test(`usage: ${name}`, async () => {
    const err = failsWith(run(['ipc-pair', ...args]), 'ipc-pair', 100, re);
    assert.is(err, null, err ?? '');
  });
}

test.run();
