// The lease lock (packages/lease/src/lock.ts): its first creation raced by
// real creators, and every file an attacker could have put in its place.
// Only root can open it, so only root can hold it; a lock file or directory
// that someone else could open, own or redirect is refused, never used.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError, SysError } from '@netgrant/core';
import { openLeaseLock, withLeaseLock } from '@netgrant/lease';
import { run, sh, tempDir, until, holdChain, NOBODY } from '../../../tools/test/lib/harness.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const tunCount = () => Number(sh('ip -o link show type tun | wc -l').stdout.trim());
const must = (script: string) => {
  const r = sh(script);
  assert.is(r.status, 0, `${script}: ${r.stderr}`);
};

test('first creation, raced: 20 mktap at once on a /run with no /run/netgrant; the quota holds, one root 0600 lock', async () => {
  // A /run of this file's own mount namespace, empty: no /run/netgrant yet.
  must('mount -t tmpfs -o mode=0755 lock-test /run');
  try {
    const env = { PEERUID: '5100', PEERGID: '5100' };
    const results = await Promise.allSettled(Array.from({ length: 20 }, () =>
      holdChain(['mktap', '--owner-from-peer', '--max-per-peer', '10'], 'echo "$TAPNAME"; exec sleep 60', env)));
    const won = results.filter((r): r is PromiseFulfilledResult<{ proc: ChildProcess; out: string }> => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    try {
      assert.is(won.length, 10, lost.map((l) => String(l.reason)).join('\n'));
      for (const l of lost) assert.match(String(l.reason), /quota reached: uid 5100 holds 10 tap\/tun leases here, at most 10/);
      const d = lstatSync('/run/netgrant');
      assert.ok(d.isDirectory() && d.uid === 0 && (d.mode & 0o7777) === 0o755, `/run/netgrant ${d.uid} ${(d.mode & 0o7777).toString(8)}`);
      assert.equal(readdirSync('/run/netgrant'), ['lease.lock']);
      const l = lstatSync('/run/netgrant/lease.lock');
      assert.ok(l.isFile() && l.uid === 0 && (l.mode & 0o7777) === 0o600, `lease.lock ${l.uid} ${(l.mode & 0o7777).toString(8)}`);
      // Nobody else can open it, so nobody else can hold it.
      const open = run(['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'flock', '-n', '/run/netgrant/lease.lock', 'true']);
      assert.is.not(open.status, 0);
      assert.match(open.stderr, /Permission denied/);
    } finally {
      for (const w of won) w.value.proc.kill('SIGKILL');
      await until(() => tunCount() === 0);
    }
  } finally {
    must('umount /run');
  }
});

/** A lock path in a fresh directory of its own (root's, 0755). */
function place(name: string): { d: string; lock: string } {
  const d = join(dir, name);
  mkdirSync(d, { mode: 0o755 });
  chmodSync(d, 0o755);
  return { d, lock: join(d, 'lease.lock') };
}
const refused = (lock: string, re: RegExp) =>
  assert.throws(() => openLeaseLock(lock), (e: unknown) => (e instanceof InputError || e instanceof SysError) && re.test(e.message), lock);

test('refused, never used: a lock file others can open, another owner\'s, a symlink, a FIFO, a directory', () => {
  const world = place('world');
  writeFileSync(world.lock, '', { mode: 0o644 });
  chmodSync(world.lock, 0o644);
  refused(world.lock, /readable or writable by group or others \(mode 644\)/);
  const other = place('other');
  writeFileSync(other.lock, '', { mode: 0o600 });
  chownSync(other.lock, NOBODY, NOBODY);
  refused(other.lock, new RegExp(`owned by uid ${NOBODY}, not root`));
  const link = place('link');
  symlinkSync('/etc/passwd', link.lock);
  refused(link.lock, /ELOOP|symbolic link|Too many levels/);
  const fifo = place('fifo');
  must(`mkfifo -m 0600 ${fifo.lock}`);
  refused(fifo.lock, /not a regular file/);
  const sub = place('sub');
  mkdirSync(sub.lock, { mode: 0o700 });
  refused(sub.lock, /EISDIR|directory/);
});

test('refused: a directory others can write, another owner\'s, or a symlink to one', () => {
  const open = place('open');
  chmodSync(open.d, 0o1777);
  refused(open.lock, /writable by group or others \(mode 1777\)/);
  const theirs = place('theirs');
  chownSync(theirs.d, NOBODY, NOBODY);
  refused(theirs.lock, new RegExp(`owned by uid ${NOBODY}, not root`));
  const real = place('real');
  const via = join(dir, 'via');
  symlinkSync(real.d, via);
  refused(join(via, 'lease.lock'), /not a directory/);
});

test('held by root elsewhere: a wait is bounded (ETIMEDOUT), and the lock is free again after', () => {
  const { lock } = place('held');
  const holder = withLeaseLock(1000, () => {
    // A second open file description in this process conflicts like another process would.
    assert.throws(() => withLeaseLock(200, () => 0, lock), (e: unknown) => e instanceof SysError && e.code === 'ETIMEDOUT');
    return 1;
  }, lock);
  assert.is(holder, 1);
  assert.is(withLeaseLock(200, () => 2, lock), 2);
});

test.after(cleanup);
test.run();
