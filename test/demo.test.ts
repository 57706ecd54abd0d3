// The README's first command must keep working: run the demo for real.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { run, ROOT } from '../tools/test/lib/harness.js';

test('npm run demo: nobody gets a tap, traffic flows, the lease ends, a stranger is refused', () => {
  const r = run([process.execPath, join(ROOT, 'tools', 'demo', 'run.mjs')], { timeout: 120000 });
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /running as uid 65534: fd 3 is \/dev\/net\/tun, the tap tap\d+/);
  assert.match(r.stdout, /3 packets transmitted, 3 received/);
  assert.match(r.stdout, /tun\/tap devices left: 0/);
  assert.match(r.stdout, /== demo ok/);
});

test.run();
