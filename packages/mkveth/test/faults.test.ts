// Fault injection (docs/reliability.md) on mkveth: every system call of
// `mkveth ... --masquerade -p ... cap-drop ... -- sh` fails in turn, then
// the chain is SIGKILLed at each (tools/test/lib/fault-veth.ts).
//
// @netgrant-test-modes: in-process
// In one chaining mode only, as the other fault files (docs/testing.md):
// the steps are mkveth's own; exec-only adds only cap-drop's Node start.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync } from 'node:fs';
import { tempDir } from '../../../tools/test/lib/harness.js';
import { injectEverywhere, figures } from '../../../tools/test/lib/faults.js';
import { vethTarget } from '../../../tools/test/lib/fault-veth.js';

const { dir, cleanup } = tempDir();
chmodSync(dir, 0o755);

test('faults and kills at every step: mkveth --masquerade -p cap-drop', async () => {
  const r = await injectEverywhere(vethTarget(dir), 24);
  console.log(`  ${figures(r)}`);
  assert.equal([...r.faults.failures, ...r.kills.failures], []);
  assert.ok(r.faults.runs > 10, 'the chain made the calls it should');
});

test.after(cleanup);
test.run();
