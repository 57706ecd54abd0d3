// bridge.conf at random, judged twice: by bridge-acl and by Debian's own
// qemu-bridge-helper (the oracle, given the same file as /etc/qemu/bridge.conf
// in a mount namespace of its own, creating a real tap on an existing
// bridge when it allows). Every decision must agree.
//
// @netgrant-test-modes: in-process
// In one chaining mode only (docs/testing.md): bridge.conf parsing judged
// against qemu-bridge-helper, the same code whichever way bridge-acl is
// reached.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { run, sh, tempDir, PYTHON } from '../../../tools/test/lib/harness.js';
import { params } from '../../../tools/test/lib/arbitraries.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);
const main = join(dir, 'bridge.conf');
const inc = join(dir, 'inc.conf');
function write(p: string, text: string): void {
  writeFileSync(p, text);
  chmodSync(p, 0o644);
}
// QEMU's side of the helper protocol: the fd is accepted only on exit 0.
const DRIVER = join(dir, 'drive.py');
write(DRIVER, `
import socket, subprocess, sys
a, b = socket.socketpair()
p = subprocess.Popen(['/usr/lib/qemu/qemu-bridge-helper', '--br=' + sys.argv[1], '--fd=%d' % b.fileno()], pass_fds=[b.fileno()], stderr=subprocess.DEVNULL)
b.close()
try:
    fds = socket.recv_fds(a, 1, 1)[1]
except OSError:
    fds = []
sys.exit(0 if p.wait() == 0 and len(fds) == 1 else 1)
`);
const stockAllows = (bridge: string) =>
  run(['unshare', '--mount', 'sh', '-c', `mount --make-rprivate / && mkdir -p ${dir}/ov && mount -t tmpfs none ${dir}/ov && mkdir ${dir}/ov/u ${dir}/ov/w ${dir}/ov/u/qemu && cp ${main} ${dir}/ov/u/qemu/bridge.conf && mount -t overlay overlay -o lowerdir=/etc,upperdir=${dir}/ov/u,workdir=${dir}/ov/w /etc && exec ${PYTHON} ${DRIVER} ${bridge}`]).status === 0;
const oursAllows = (bridge: string) => run(['bridge-acl', '-c', main, 'true'], { env: { PEERUID: '0', PEERGID: '0', REQBRIDGE: bridge } }).status === 0;

sh('ip link add br-t0 type bridge && ip link set br-t0 up && ip link add br-t1 type bridge && ip link set br-t1 up');

// Lines QEMU accepts, and lines that fail its parse (or only look alike).
const GOOD = ['allow br-t0', 'allow br-t1', 'allow all', 'deny br-t0', 'deny br-t1', 'deny all', '# comment', '', '   ', '  allow   br-t1  ',
  'allow\tbr-t0', 'allow br-t', 'allow br-t0#x', '#allow br-t0', 'allow ALL', `include ${inc}`, 'include /nonexistent', 'allow xxxxxxxxxxxxxxx'];
const ODD = ['allow', 'deny', 'include', 'frob br-t0', 'ALLOW br-t0', 'Deny all', 'DENY br-t1', 'allow br-t0 br-t1', 'allow br-t0-long-name-x',
  'deny br-t0-long-name-x', 'deny xxxxxxxxxxxxxxxx'];
const line = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...GOOD) }, { weight: 1, arbitrary: fc.constantFrom(...ODD) });
const text = fc.array(line, { maxLength: 6 }).map((l) => l.join('\n') + '\n');

test('random bridge.conf (with an include): bridge-acl decides exactly as qemu-bridge-helper', () => {
  const seen = { allowed: 0, refused: 0 };
  fc.assert(
    fc.property(text, text, fc.constantFrom('br-t0', 'br-t1'), (mainText, incText, bridge) => {
      write(main, mainText);
      write(inc, incText);
      const want = stockAllows(bridge);
      seen[want ? 'allowed' : 'refused']++;
      assert.is(oursAllows(bridge), want, `${bridge} with ${JSON.stringify(mainText)} including ${JSON.stringify(incText)}: qemu-bridge-helper ${want ? 'allows' : 'refuses'}`);
    }),
    params(60),
  );
  assert.ok(seen.allowed > 5 && seen.refused > 5, JSON.stringify(seen));
});

test.after(() => {
  sh('ip link del br-t0; ip link del br-t1');
  cleanup();
});
test.run();
