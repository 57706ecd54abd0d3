// Fault injection on the lease reaper (docs/reliability.md): every netlink
// call of a sweep fails in turn, then the sweep is SIGKILLed at each; it
// never deletes a live lease or a tap netgrant did not make, and the next
// sweep deletes exactly the stale leases.
//
// @netgrant-test-modes: in-process
// In one chaining mode only (docs/testing.md): the reaper is one program
// that chains to nothing: the modes do not differ here.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { injectEverywhere, figures } from '../tools/test/lib/faults.js';
import { reapTarget } from '../tools/test/lib/fault-reap.js';
import { sh, until, BASE_ENV, NOBODY } from '../tools/test/lib/harness.js';
import { tunLinks } from '../tools/test/lib/kernel-state.js';

test('faults and kills at every netlink step of a sweep: netgrant-reap -o', async () => {
  sh('ip tuntap add mode tap name foreign0');
  const live = spawn('mktap', ['-n', 'live0', '-o', String(NOBODY), 'sleep', '600'], { env: { ...BASE_ENV, PEERUID: String(NOBODY), PEERGID: String(NOBODY) }, stdio: 'ignore' });
  try {
    assert.ok(await until(() => tunLinks().some((l) => l.name === 'live0'), 5000));
    const netlink = new Set(['socket', 'bind', 'setsockopt', 'sendto', 'recvfrom']);
    const r = await injectEverywhere(reapTarget(), 16, (s) => netlink.has(s.syscall));
    console.log(`  ${figures(r)}`);
    assert.equal([...r.faults.failures, ...r.kills.failures], []);
    assert.ok(r.faults.runs >= 8, 'the sweep made the netlink calls it should');
  } finally {
    live.kill('SIGKILL');
    sh('ip link del foreign0; ip link del st0; ip link del st1; true');
  }
});

test.run();
