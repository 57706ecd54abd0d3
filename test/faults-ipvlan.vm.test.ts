// Fault injection (docs/reliability.md) on mkipvlan, in the kernel VM lane
// (Debian's stock kernel has ipvlan, this machine's does not): the same
// driver, target and checks as faults-macvlan.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync } from 'node:fs';
import { tempDir } from '../tools/test/lib/harness.js';
import { injectEverywhere, figures } from '../tools/test/lib/faults.js';
import { launcherTarget } from '../tools/test/lib/fault-launcher.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);

test('faults and kills at every step: mkipvlan cap-drop', async () => {
  const r = await injectEverywhere(launcherTarget('mkipvlan', dir), 40);
  console.log(`  ${figures(r)}`);
  assert.equal([...r.faults.failures, ...r.kills.failures], []);
  assert.ok(r.faults.runs > 10, 'the chain made the calls it should');
});

test.after(cleanup);
test.run();
