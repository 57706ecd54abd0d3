// Fault injection on mktap's own chains (docs/reliability.md): every system
// call of the chain fails in turn (strace inject), then the chain is
// SIGKILLed at each; afterwards no tap is left (except a complete
// persistent one, after a kill once --persist took effect), no lock is
// held, the fds the next program gets are exactly the granted ones, and the
// next request succeeds. Bridge and client-namespace chains:
// faults-mktap-ns.test.ts; the services: faults-service.test.ts.
//
// @netgrant-test-modes: in-process
// In one chaining mode only (docs/testing.md): mktap's own calls, the same
// in both modes; the exec path is failed natively (exec-only) by
// faults-macvlan.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NOBODY } from '../tools/test/lib/harness.js';
import { injectEverywhere, figures } from '../tools/test/lib/faults.js';
import { mktapTarget, report, type MktapChain } from '../tools/test/lib/fault-mktap.js';
import { inodeOf } from '../tools/test/lib/kernel-state.js';

const chains: MktapChain[] = [
  { name: 'mktap (plain tap)', argv: ['mktap', '-o', String(NOBODY), ...report()], fds: '0 1 2 3', shows: /tun type tap .*user nobody/ },
  { name: 'mktap -q 2', argv: ['mktap', '-o', String(NOBODY), '-q', '2', '--vnet-hdr', ...report()], fds: '0 1 2 3 4', shows: /multi_queue numqueues 2/ },
  { name: 'mktap --persist', argv: ['mktap', '-o', String(NOBODY), '--persist', ...report()], fds: '0 1 2 3', shows: /persist on user nobody/ },
];

for (const c of chains) {
  test(`faults and kills at every step: ${c.name}`, async () => {
    const r = await injectEverywhere(mktapTarget(c, [inodeOf('/proc/self/ns/net')]), 36);
    console.log(`  ${figures(r)}`);
    assert.equal([...r.faults.failures, ...r.kills.failures], []);
    assert.ok(r.faults.runs > 10, 'the chain made the calls it should');
  });
}

test.run();
