// fds, trusted config files, user lookups: every function and its failure path.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync, chmodSync, chownSync, symlinkSync, openSync } from 'node:fs';
import { join } from 'node:path';
import {
  open, close, closeQuietly, dup2, dup3, dupCloexec, isCloexec, setCloexec, getStatusFlags, setNonblocking, isOpen, cloexecRange,
  closeRange, listOpenFds, lockExclusive, unlock, openTrustedFile, parseUser, parseGroup, userByName, userById, groupByName, groupList,
  O_RDONLY, O_NONBLOCK, SysError, InputError, UsageError,
} from '@netgrant/core';
import { tempDir, NOBODY } from '../../../tools/test/lib/harness.js';

test('open is close-on-exec; close; failures carry errno', () => {
  const fd = open('/dev/null', O_RDONLY);
  assert.ok(isCloexec(fd));
  close(fd);
  assert.not.ok(isOpen(fd));
  assert.throws(() => close(fd), (e: unknown) => e instanceof SysError && e.code === 'EBADF' && /close fd \d+: Bad file descriptor \(EBADF\)/.test(e.message));
  assert.throws(() => open('/nonexistent/x', O_RDONLY), (e: unknown) => e instanceof SysError && e.code === 'ENOENT');
  closeQuietly(fd);
});

test('dup2/dup3/dupCloexec and the close-on-exec flag', () => {
  const fd = open('/dev/null', O_RDONLY);
  const hi = dupCloexec(fd, 200);
  assert.ok(hi >= 200 && isCloexec(hi));
  dup2(fd, 201);
  assert.not.ok(isCloexec(201), 'dup2 result is inheritable');
  dup3(fd, 202, true);
  assert.ok(isCloexec(202));
  setCloexec(202, false);
  assert.not.ok(isCloexec(202));
  dup3(202, 202, true);
  assert.ok(isCloexec(202), 'dup3 onto itself sets the flag');
  assert.throws(() => dup2(9999, 203), /EBADF/);
  [fd, hi, 201, 202].forEach(close);
});

test('status flags, close_range', () => {
  const fd = open('/dev/null', O_RDONLY);
  setNonblocking(fd, true);
  assert.ok(getStatusFlags(fd) & O_NONBLOCK);
  setNonblocking(fd, false);
  assert.not.ok(getStatusFlags(fd) & O_NONBLOCK);
  dup2(fd, 300);
  dup2(fd, 301);
  cloexecRange(300, 301);
  assert.ok(isCloexec(300) && isCloexec(301));
  closeRange(300, 301);
  assert.not.ok(isOpen(300) || isOpen(301));
  assert.ok(listOpenFds().includes(fd));
  close(fd);
  assert.throws(() => getStatusFlags(fd), /EBADF/);
});

test('lockExclusive: waits, then times out with ETIMEDOUT', () => {
  const a = openSync('/proc/self/ns/net', 'r');
  const b = openSync('/proc/self/ns/net', 'r');
  lockExclusive(a, 100, 'lock a');
  const t = Date.now();
  assert.throws(() => lockExclusive(b, 150, 'lock b'), (e: unknown) => e instanceof SysError && e.code === 'ETIMEDOUT');
  assert.ok(Date.now() - t >= 140);
  unlock(a);
  lockExclusive(b, 100, 'lock b');
  [a, b].forEach(close);
});

test('openTrustedFile: root-owned, not group/world-writable, no symlink, same filesystem', () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = join(dir, 'ok.conf');
    writeFileSync(f, 'x\n');
    chmodSync(f, 0o644);
    const t = openTrustedFile(f, { sameFilesystemAs: dir });
    assert.is(t.text, 'x\n');
    close(t.fd);
    const cases: [string, () => void, RegExp][] = [
      ['group-writable', () => chmodSync(f, 0o664), /writable by group \(mode 0664\)/],
      ['world-writable', () => chmodSync(f, 0o646), /writable by others/],
      ['not root', () => (chmodSync(f, 0o644), chownSync(f, NOBODY, 0)), /owned by uid 65534/],
    ];
    for (const [, prep, re] of cases) {
      prep();
      assert.throws(() => openTrustedFile(f), (e: unknown) => e instanceof InputError && re.test((e as Error).message));
    }
    chownSync(f, 0, 0);
    symlinkSync(f, join(dir, 'link'));
    assert.throws(() => openTrustedFile(join(dir, 'link')), /is a symbolic link/);
    assert.throws(() => openTrustedFile(dir), /not a regular file/);
    assert.throws(() => openTrustedFile(f, { sameFilesystemAs: '/proc' }), /not on the same filesystem/);
  } finally {
    cleanup();
  }
});

test('users and groups through NSS', () => {
  assert.is(userByName('root')?.uid, 0);
  assert.is(userById(NOBODY)?.name, 'nobody');
  assert.is(userByName('no-such-user-zz'), null);
  assert.is(groupByName('nogroup'), NOBODY);
  assert.ok(groupList('root', 0).includes(0));
  assert.is(parseUser('nobody', '-u'), NOBODY);
  assert.is(parseUser('1234', '-u'), 1234);
  assert.throws(() => parseUser('no-such-user-zz', '-u'), (e: unknown) => e instanceof UsageError);
  assert.throws(() => parseUser('4294967295', '-u'), /out of range/);
  assert.is(parseGroup('root', '-g'), 0);
  assert.throws(() => parseGroup('', '-g'), /unknown group/);
});

test.run();
