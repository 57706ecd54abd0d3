// Fault injection (docs/reliability.md) on mkipvlan, in the kernel VM lane
// (Debian's stock kernel has ipvlan, this machine's does not): the same
// driver, target and checks as faults-macvlan.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync } from 'node:fs';
import { tempDir } from '../tools/test/lib/harness.js';
import { injectEverywhere, figures, type Step } from '../tools/test/lib/faults.js';
import { launcherTarget } from '../tools/test/lib/fault-launcher.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);

// Under TCG a chain run costs seconds: only the calls where mkipvlan and
// mkmacvlan differ at all (the launch's netlink requests and namespace
// calls) are failed here; every other step of the same launcher code is
// failed natively in faults-macvlan.test.ts.
const launchStep = (s: Step) => /NETLINK|^(socket|bind|sendto|sendmsg|recvfrom|recvmsg|unshare|setns)\b/.test(s.kind);

test('faults and kills at every step: mkipvlan cap-drop (the launch\'s netlink and namespace calls)', async () => {
  const r = await injectEverywhere(launcherTarget('mkipvlan', dir), 12, launchStep);
  console.log(`  ${figures(r)}`);
  assert.equal([...r.faults.failures, ...r.kills.failures], []);
  assert.ok(r.faults.runs > 10, 'the chain made the calls it should');
});

test.after(cleanup);
test.run();
