// Fault injection (docs/reliability.md) on mktap chains that reach other
// kernel objects: a bridge (with --owner-from-peer and an MTU), and a
// client's network namespace (-N, owner-checked). Same checks as
// faults-mktap.test.ts, in both namespaces.
//
// @netgrant-test-modes: in-process
// In one chaining mode only (docs/testing.md): mktap's own calls in a
// bridge's and a client's namespace, the same in both modes; the exec path
// is failed natively (exec-only) by faults-macvlan.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sh, NOBODY } from '../tools/test/lib/harness.js';
import { injectEverywhere, figures } from '../tools/test/lib/faults.js';
import { mktapTarget, report, type MktapChain } from '../tools/test/lib/fault-mktap.js';
import { inodeOf } from '../tools/test/lib/kernel-state.js';

sh('ip link add fbr0 type bridge && ip link set fbr0 up && ip netns add fns');
const NETNS_INODES = [inodeOf('/proc/self/ns/net'), inodeOf('/run/netns/fns')];

const chains: MktapChain[] = [
  {
    name: 'mktap -b (bridge, --owner-from-peer)',
    argv: ['mktap', '--owner-from-peer', '-b', 'fbr0', '-m', '1400', ...report()],
    env: { PEERUID: String(NOBODY), PEERGID: String(NOBODY) },
    fds: '0 1 2 3',
    shows: /mtu 1400 .*master fbr0 .*user nobody group nogroup/,
  },
  {
    name: 'mktap -N (client namespace, quota lock)',
    wrap: ['sh', '-c', 'exec 5</run/netns/fns; exec "$@"', 'sh'],
    argv: ['mktap', '-N', '5', '-o', '0', '--max-per-peer', '4', ...report('-n fns')],
    env: { PEERUID: '0' },
    fds: '0 1 2 3 5',
    shows: /tun type tap .*user root/,
    netns: 'fns',
  },
];

for (const c of chains) {
  test(`faults and kills at every step: ${c.name}`, async () => {
    const r = await injectEverywhere(mktapTarget(c, NETNS_INODES), 36);
    console.log(`  ${figures(r)}`);
    assert.equal([...r.faults.failures, ...r.kills.failures], []);
    assert.ok(r.faults.runs > 10, 'the chain made the calls it should');
  });
}

test.run();
