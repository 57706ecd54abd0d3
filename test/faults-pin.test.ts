// Fault injection on a pinned lease (docs/reliability.md): every bpf(2)
// and netlink call of `mktap --pin` fails in turn, then the chain is
// SIGKILLed at each. A failure while the filter is being loaded or attached
// leaves no tap; a run that goes on shows the filter attached: never an
// unfiltered lease.
//
// @netgrant-test-modes: in-process
// In one chaining mode only (docs/testing.md): the failed calls are mktap's
// own bpf(2) and netlink calls, the same in both modes; the exec path is
// failed natively (exec-only) by faults-macvlan.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NOBODY } from '../tools/test/lib/harness.js';
import { injectEverywhere, figures } from '../tools/test/lib/faults.js';
import { mktapTarget, report } from '../tools/test/lib/fault-mktap.js';
import { inodeOf } from '../tools/test/lib/kernel-state.js';

test('faults and kills at every bpf and netlink step: mktap --pin', async () => {
  const chain = {
    name: 'mktap --pin',
    argv: ['mktap', '-o', String(NOBODY), '--guest-mac', '02:00:00:00:00:0a', '--pin', '--guest-ip', '10.0.0.2', ...report('', 'ingress')],
    fds: '0 1 2 3',
    shows: /tun type tap .*user nobody.* filter .*netgrant-pin direct-action/,
  };
  const kernel = new Set(['bpf', 'socket', 'bind', 'sendto', 'recvfrom']);
  const r = await injectEverywhere(mktapTarget(chain, [inodeOf('/proc/self/ns/net')]), 24, (s) => kernel.has(s.syscall));
  console.log(`  ${figures(r)}`);
  assert.equal([...r.faults.failures, ...r.kills.failures], []);
  assert.ok(r.faults.runs >= 10, 'the chain made the calls it should');
  assert.ok(r.faults.steps > 0);
});

test.run();
