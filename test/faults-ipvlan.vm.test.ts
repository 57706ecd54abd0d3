// Fault injection (docs/reliability.md) on mkipvlan, in the kernel VM lane
// (Debian's stock kernel has ipvlan, this machine's does not): the same
// driver, target and checks as faults-macvlan.test.ts.
//
// @netgrant-test-modes: in-process
// In one chaining mode only (docs/testing.md): the steps failed here are
// mkipvlan's own launch calls (netlink, namespaces), the same in both
// modes; exec-only differs only in how cap-drop is reached after them,
// which faults-macvlan.test.ts fails natively (exec-only mode). Under TCG a
// mode costs minutes of guest time, and both modes' jobs outlived the
// lane's per-job timeout on a loaded machine (issue 13). A launch under TCG
// takes up to 15 s and every run makes two (the held one and the chain's),
// so 8 steps are sampled (every kind of call is always among them).
// @netgrant-test-slow (the VM lane starts it first)
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

test('faults at every step: mkipvlan cap-drop (the launch\'s netlink and namespace calls)', async () => {
  // Faults only: a kill at any step ends the launch's namespace with its
  // process, the kernel's teardown whatever the link's kind, and
  // faults-macvlan.test.ts kills every step natively.
  const r = await injectEverywhere(launcherTarget('mkipvlan', dir), 8, launchStep, { kills: false });
  console.log(`  ${figures(r)}`);
  assert.equal([...r.faults.failures, ...r.kills.failures], []);
  assert.ok(r.faults.runs >= 8, 'the chain made the calls it should (8 sampled)');
});

test.after(cleanup);
test.run();
