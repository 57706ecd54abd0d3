import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openSync } from 'node:fs';
import { socketpair, sendMessage, sendmsg, sendByte, encodeEnv, encodeHeader, close } from '@netgrant/core';
import { runWithFds, failsWith, pipeWith, SHOW_FDS, PATH } from '../../../tools/test/lib/harness.js';


test('places fds at the listed numbers, exports allowed variables only, execs', () => {
  const [a, b] = socketpair();
  const p1 = pipeWith('one');
  const p2 = pipeWith('two');
  sendMessage(a, encodeEnv([['TAPNAME', 'tap3'], ['LD_PRELOAD', '/tmp/evil.so'], ['X', 'y']]), [p1, p2]);
  const r = runWithFds(['fd-recv', '-s', '6', '-d', '7,3', '-e', 'TAPNAME,X', 'sh', '-c', `echo "$TAPNAME $X \${LD_PRELOAD-unset}"; cat <&7; cat <&3; echo; ${SHOW_FDS}`], { 6: b });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, 'tap3 y unset\nonetwo\n0 1 2 3 6 7 \n');
  [a, b, p1, p2].forEach(close);
});

test('-E exports every variable; default places fds at 3, 4, ...', () => {
  const [a, b] = socketpair();
  const p1 = pipeWith('A');
  const p2 = pipeWith('B');
  sendMessage(a, encodeEnv([['ANY', 'thing']]), [p1, p2]);
  const r = runWithFds(['fd-recv', '-s', '9', '-E', 'sh', '-c', `echo $ANY; cat <&3; cat <&4; echo; ${SHOW_FDS}`], { 9: b });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, 'thing\nAB\n0 1 2 3 4 9 \n');
  [a, b, p1, p2].forEach(close);
});

test('a received fd may land on a number another one arrived at', () => {
  // fd 3 is free in the child, so the first received fd arrives as 3 (or 4) — ask for them swapped.
  const [a, b] = socketpair();
  const p1 = pipeWith('first');
  const p2 = pipeWith('second');
  sendMessage(a, Buffer.alloc(0), [p1, p2]);
  const r = runWithFds(['fd-recv', '-s', '10', '-d', '4,3', 'sh', '-c', 'cat <&4; echo; cat <&3'], { 10: b });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, 'first\nsecond');
  [a, b, p1, p2].forEach(close);
});

test('--byte receives one fd from the one-byte protocol', () => {
  const [a, b] = socketpair();
  const p = pipeWith('tap');
  sendByte(a, 0, p);
  const r = runWithFds(['fd-recv', '-s', '6', '--byte', '0', '-d', '5', 'sh', '-c', 'cat <&5'], { 6: b });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, 'tap');
  [a, b, p].forEach(close);
});

test('-m 0 makes fds optional', () => {
  const [a, b] = socketpair();
  sendMessage(a, encodeEnv([['Q', '2']]));
  const r = runWithFds(['fd-recv', '-s', '6', '-d', '5', '-m', '0', '-e', 'Q', 'sh', '-c', `echo $Q; ${SHOW_FDS}`], { 6: b });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, '2\n0 1 2 6 \n');
  [a, b].forEach(close);
});

type Case = [string, string[], (a: number) => void, number, RegExp];
const cases: Case[] = [
  ['peer closes before sending', ['-s', '6', 'true'], (a) => close(a), 111, /closed the connection before sending/],
  ['timeout', ['-s', '6', '-t', '200', 'true'], () => undefined, 111, /\(ETIMEDOUT\): timed out waiting for the header/],
  ['short message then close', ['-s', '6', 'true'], (a) => { sendmsg(a, Buffer.concat([encodeHeader(10, 0), Buffer.from('A=1')])); close(a); }, 111, /closed the connection in the middle of the payload/],
  ['oversized message', ['-s', '6', '-z', '100', 'true'], (a) => sendmsg(a, encodeHeader(101, 0)), 111, /101 bytes exceeds the limit of 100/],
  ['more fds than asked for', ['-s', '6', '-d', '3', 'true'], (a) => sendMessage(a, Buffer.alloc(0), [pipeWith('1'), pipeWith('2')]), 111, /more than 1 fds sent|announces 2 fds/],
  ['no fds when some are required', ['-s', '6', '-d', '3', 'true'], (a) => sendMessage(a, Buffer.alloc(0)), 111, /expected at least 1 fd, got 0/],
  ['malformed payload', ['-s', '6', 'true'], (a) => sendMessage(a, Buffer.from('noequals\0'), [pipeWith('1')]), 111, /bad entry/],
  ['wrong byte', ['-s', '6', '--byte', '0', 'true'], (a) => sendByte(a, 7, pipeWith('1')), 111, /expected byte 0, got 7/],
];
for (const [name, args, send, code, re] of cases) {
  test(`bad message: ${name} (nothing exec'd, no fd passed on)`, () => {
    const [a, b] = socketpair();
    send(a);
    // 'true' would exit 0; a failure must not reach it.
    const r = runWithFds(['fd-recv', ...args], { 6: b });
    const err = failsWith(r, 'fd-recv', code, re);
    assert.is(err, null, err ?? '');
    close(b);
    try {
      close(a);
    } catch {
      /* closed by the case */
    }
  });
}

const usage: [string, string[], Record<number, () => number>, RegExp][] = [
  ['no -s', ['true'], {}, /option -s is required/],
  ['-s not open', ['-s', '8', 'true'], {}, /fd 8 is not open/],
  ['-s not a socket', ['-s', '3', 'true'], { 3: () => openSync('/dev/null', 'r') }, /not a unix socket/],
  ['-d names the socket', ['-s', '6', '-d', '6', 'true'], { 6: () => socketpair()[0] }, /is the socket/],
  ['-t not a number', ['-s', '6', '-t', '1s', 'true'], {}, /-t: not a number/],
  ['-m above the fd count', ['-s', '6', '-d', '3', '-m', '2', 'true'], {}, /-m: out of range/],
  ['bad -e name', ['-s', '6', '-e', 'A-B', 'true'], {}, /invalid variable name/],
  ['--byte with -E', ['-s', '6', '--byte', '0', '-E', 'true'], {}, /exactly one fd/],
  ['unknown option', ['-s', '6', '--frob', 'true'], {}, /unknown option --frob/],
];
for (const [name, args, mk, re] of usage) {
  test(`usage: ${name}`, () => {
    const fds = Object.fromEntries(Object.entries(mk).map(([n, f]) => [n, f()]));
    const r = runWithFds(['fd-recv', ...args], fds, { env: { PATH } });
    const err = failsWith(r, 'fd-recv', 100, re);
    assert.is(err, null, err ?? '');
    Object.values(fds).forEach((fd) => close(fd));
  });
}

test.run();
