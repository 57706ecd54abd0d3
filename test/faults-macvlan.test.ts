// Fault injection (docs/reliability.md) on mkmacvlan, natively (this kernel
// has macvlan): every system call of `mkmacvlan -c CONF cap-drop ... -- sh`
// fails in turn, then the chain is SIGKILLed at each; the same driver and
// target as faults-ipvlan.vm.test.ts (tools/test/lib/fault-launcher.ts).
//
// @netgrant-test-modes: exec-only
// In exec-only mode only (docs/testing.md): every link reached by a real
// exec makes every call the in-process mode makes, and the exec path's own
// (execve, the next Node start, cap-drop's privilege drop) on top. Under
// CI's maintenance lines, which run in-process only, this file does not run;
// the other fault files do.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync } from 'node:fs';
import { tempDir } from '../tools/test/lib/harness.js';
import { injectEverywhere, figures } from '../tools/test/lib/faults.js';
import { launcherTarget } from '../tools/test/lib/fault-launcher.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);

test('faults and kills at every step: mkmacvlan cap-drop', async () => {
  const r = await injectEverywhere(launcherTarget('mkmacvlan', dir), 40);
  console.log(`  ${figures(r)}`);
  assert.equal([...r.faults.failures, ...r.kills.failures], []);
  assert.ok(r.faults.runs > 10, 'the chain made the calls it should');
});

test.after(cleanup);
test.run();
