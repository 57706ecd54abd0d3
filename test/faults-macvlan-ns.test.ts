// Fault injection (docs/reliability.md) on mkmacvlan -N: every sampled
// call of the launch itself (netlink, setns, the registry)
// in `mkmacvlan -c CONF -N 5 -- sh` fails in turn, then the
// launcher is SIGKILLed at each (tools/test/lib/fault-launcher.ts,
// launcherNsTarget): a failure leaves neither link nor entry in the
// client's namespace, a kill never leaves an address uncounted.
//
// @netgrant-test-modes: in-process
// In one chaining mode only (docs/testing.md): the -N steps are the
// launcher's own, the same in both modes; the exec path is failed natively
// (exec-only) by faults-macvlan.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync } from 'node:fs';
import { tempDir } from '../tools/test/lib/harness.js';
import { injectEverywhere, figures, type Step } from '../tools/test/lib/faults.js';
import { launcherNsTarget } from '../tools/test/lib/fault-launcher.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);

/** The launch's own calls (netlink, namespaces, the registry), not the Node start's and the lock's, which faults-macvlan fails. */
const CALLS = new Set(['setns', 'sendto', 'sendmsg', 'recvfrom', 'recvmsg', 'rename', 'renameat', 'renameat2', 'unlink', 'unlinkat']);
const own = (s: Step) => CALLS.has(s.syscall) || (s.syscall === 'openat' && /\/run\/netgrant|\/ns\/net/.test(s.line));

test('faults and kills at sampled steps: mkmacvlan -N', async () => {
  const r = await injectEverywhere(launcherNsTarget('mkmacvlan', dir), 10, own);
  console.log(`  ${figures(r)}`);
  assert.equal([...r.faults.failures, ...r.kills.failures], []);
  assert.ok(r.faults.runs > 8, 'the chain made the calls it should');
});

test.after(cleanup);
test.run();
