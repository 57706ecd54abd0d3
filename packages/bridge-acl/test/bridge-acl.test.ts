// bridge-acl decides like qemu-bridge-helper, for a peer given by PEERUID/PEERGID.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync, chmodSync, chownSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { run, tempDir, failsWith, NOBODY } from '../../../tools/test/lib/harness.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
let n = 0;
function conf(text: string, mode = 0o644, uid = 0, gid = 0): string {
  const p = join(dir, `c${n++}.conf`);
  writeFileSync(p, text);
  chmodSync(p, mode);
  chownSync(p, uid, gid);
  return p;
}
const check = (path: string, bridge: string, uid = 0, gid = 0) =>
  run(['bridge-acl', '-c', path, 'sh', '-c', 'echo "$ACLBRIDGE"'], { env: { PEERUID: String(uid), PEERGID: String(gid), REQBRIDGE: bridge } });
const allowed = (path: string, bridge: string, uid = 0, gid = 0) => check(path, bridge, uid, gid).status === 0;

test('allow, deny, all; deny wins whatever the order; default deny', () => {
  const c = conf('# comment\n\nallow br0\n  allow   br1  \ndeny br1\n');
  assert.ok(allowed(c, 'br0'));
  assert.not.ok(allowed(c, 'br1'), 'deny wins');
  assert.not.ok(allowed(c, 'br2'), 'default deny');
  const all = conf('deny all\nallow br0\n');
  assert.not.ok(allowed(all, 'br0'), 'deny all before allow still wins');
  const allowAll = conf('allow all\ndeny br9\n');
  assert.ok(allowed(allowAll, 'anything0'));
  assert.not.ok(allowed(allowAll, 'br9'));
  assert.is(check(allowAll, 'br0').stdout, 'br0\n', 'ACLBRIDGE exported');
  assert.not.ok(allowed(conf('ALLOW br0\n'), 'br0'), 'commands are case-sensitive, as in qemu-bridge-helper (bridge-acl.adversarial.test.ts)');
});

test('parse errors refuse everything; names of 16 bytes or more are errors (CVE-2019-13164)', () => {
  for (const text of ['allow br0\nfrobnicate br0\n', 'allow\n', 'allow br0\nallow abcdefghijklmnop\n']) {
    const r = check(conf(text), 'br0');
    assert.is(r.status, 100, `${JSON.stringify(text)}: ${r.stderr}`);
    assert.match(r.stderr, /bridge-acl: fatal: .*c\d+\.conf:\d+: /);
  }
  // A 16-byte request never reaches the ACL (where a truncating matcher could confuse it with a 15-byte rule).
  const long = check(conf('allow abcdefghijklmno\n'), 'abcdefghijklmnop');
  assert.is(failsWith(long, 'bridge-acl', 100, /REQBRIDGE: invalid interface name/), null, long.stderr);
});

test('includes: read as the peer would, errors inside ignored, untrusted ones skipped', () => {
  const forNobody = conf('allow br-nobody\n', 0o640, 0, NOBODY);
  const broken = conf('allow br-early\nbogus line\nallow br-late\n');
  const writable = conf('allow br-evil\n', 0o666);
  const main = conf(`include ${forNobody}\ninclude ${broken}\ninclude ${writable}\ninclude /nonexistent/file\nallow br0\n`);
  assert.ok(allowed(main, 'br-nobody', NOBODY, NOBODY), 'nobody reads its include');
  assert.not.ok(allowed(main, 'br-nobody', 4242, 4242), 'uid 4242 cannot read it');
  assert.ok(allowed(main, 'br-early', 4242, 4242), 'rules before the error count');
  assert.not.ok(allowed(main, 'br-late', 4242, 4242), 'rules after the error do not');
  const r = check(main, 'br-evil', 4242, 4242);
  assert.is(r.status, 1, 'a world-writable include grants nothing');
  assert.match(r.stderr, /writable by group and others/);
  assert.ok(allowed(main, 'br0', 4242, 4242));
  const loop = join(dir, 'loop.conf');
  writeFileSync(loop, `include ${loop}\nallow br0\n`);
  chmodSync(loop, 0o644);
  assert.ok(allowed(loop, 'br0'), 'an include cycle ends');
});

test('the main file: trusted, and readable by the peer', () => {
  const r1 = check(conf('allow br0\n', 0o646), 'br0');
  assert.is(failsWith(r1, 'bridge-acl', 100, /writable by others/), null, r1.stderr);
  const r2 = check(conf('allow br0\n', 0o644, 4242), 'br0');
  assert.is(failsWith(r2, 'bridge-acl', 100, /owned by uid 4242, not root/), null, r2.stderr);
  const link = join(dir, 'link.conf');
  symlinkSync(conf('allow br0\n'), link);
  const r3 = check(link, 'br0');
  assert.is(failsWith(r3, 'bridge-acl', 100, /is a symbolic link/), null, r3.stderr);
  const r4 = check(conf('allow br0\n', 0o600), 'br0', NOBODY, NOBODY);
  assert.is(failsWith(r4, 'bridge-acl', 1, /cannot read/), null, r4.stderr);
  mkdirSync(join(dir, 'adir'));
  const r5 = check(join(dir, 'adir'), 'br0');
  assert.is(failsWith(r5, 'bridge-acl', 100, /not a regular file/), null, r5.stderr);
  const r6 = check(join(dir, 'missing.conf'), 'br0');
  assert.is(failsWith(r6, 'bridge-acl', 111, /ENOENT/), null, r6.stderr);
  const r7 = run(['bridge-acl', '-c', conf('allow br0\n'), 'true'], { env: { PEERUID: '0', PEERGID: '0' } });
  assert.is(failsWith(r7, 'bridge-acl', 100, /REQBRIDGE not set/), null, r7.stderr);
  const r8 = run(['bridge-acl', '-c', conf('allow br0\n'), 'true'], { env: { REQBRIDGE: 'br0' } });
  assert.is(failsWith(r8, 'bridge-acl', 100, /PEERUID not set/), null, r8.stderr);
});

test.after(cleanup);
test.run();
