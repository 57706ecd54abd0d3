// mkipvlan on this machine's kernel, which has no ipvlan: the launch fails
// cleanly at link creation and leaves nothing. The real launches run in the
// kernel VM lane (mkipvlan.vm.test.ts) on Debian's stock kernel; the
// launcher suite's tests that fail before any link exists (configuration
// and options) run here, natively.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { run, sh, tempDir, failsWith } from '../../../tools/test/lib/harness.js';
import { launcherSuite } from '../../../tools/test/lib/launcher.js';

launcherSuite({ prog: 'mkipvlan', wrongMode: ['bridge', /-m: expected l3s, l3, l2/], routesViaGateway: false, parts: ['input'] });

const { dir, cleanup } = tempDir();
sh('ip link add ip0 type veth peer name ip1 && ip addr add 10.40.0.1/24 dev ip0 && ip link set ip0 up');
const hasIpvlan = sh('ip link add ipvl-probe link ip0 type ipvlan && ip link del ipvl-probe').status === 0;

test('without kernel ipvlan: a clear error, nothing left in any namespace', () => {
  if (hasIpvlan) return; // this kernel has ipvlan: mkipvlan.vm.test.ts covers it
  const c = join(dir, 'ipvlan.conf');
  writeFileSync(c, '10.40.0.0/24\n');
  chmodSync(c, 0o644);
  const r = run(['mkipvlan', '-c', c, 'sh', '-c', 'echo EXECUTED']);
  assert.is(failsWith(r, 'mkipvlan', 111, /create ipvlan link eth0: .*(EOPNOTSUPP|Unknown device type|ENOTSUP)/), null, r.stderr);
  assert.is(r.stdout, '');
  assert.is(run(['ip', '-o', 'link', 'show', 'type', 'ipvlan']).stdout, '');
});

test('the default config path', () => {
  const d = run(['mkipvlan', 'true']);
  assert.is(failsWith(d, 'mkipvlan', 111, /open \/etc\/netgrant\/ipvlan\.conf: No such file or directory/), null, d.stderr);
});

test.after(cleanup);
test.run();
