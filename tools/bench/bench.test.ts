// The benchmark's smoke test: `npm run bench` is not part of the suite, so
// a tiny configuration of it runs here (inside the test's own namespace),
// and its results must show real work: every lease it timed was checked to
// be a tap on the bridge, the resident server ends with the fds it started
// with, traffic crossed every netgrant datapath, and nothing is left
// behind (no tap, no process, no mount).
//
// @netgrant-test-modes: in-process
// In one chaining mode only (docs/testing.md): the smoke test of the bench,
// whose chain row itself times both ways of chaining (every link exec'd, and
// in-process).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { run, tempDir, NODE, ROOT } from '../test/lib/harness.js';

const { dir, cleanup } = tempDir();
// The fairness row's clients (uids 65534 and 65533) reach its sockets under here.
chmodSync(dir, 0o755);
const out = join(dir, 'bench.json');

/**
 * Processes whose command line names this run's directory (the bench makes
 * its temp dir under TMPDIR=dir; the other mode's run, in another
 * namespace, shares the pid namespace and must not count).
 */
function benchProcesses(): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
      if (cmd.includes(dir)) found.push(`${pid}: ${cmd.replace(/\0/g, ' ')}`);
    } catch {
      /* gone */
    }
  }
  return found;
}

test('a small bench run measures every row; each lease it times is a checked tap; nothing is left behind', () => {
  const r = run([NODE, join(ROOT, 'tools', 'bench', 'run.mjs')], {
    env: {
      TMPDIR: dir,
      NETGRANT_BENCH_NS: '1',
      BENCH_OUT: out,
      BENCH_RUNS: '2',
      BENCH_LEASES: '20',
      BENCH_THROUGHPUT_LEASES: '64',
      BENCH_IPERF_SECONDS: '1',
      BENCH_IPERF_REPEATS: '1',
      BENCH_DATAPATH: 'veth,macvlan,tap',
      BENCH_FAIR_LEASES: '4',
      BENCH_REAP_LEASES: '6',
    },
    timeout: 900_000,
  });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /Targets/);
  const res = JSON.parse(readFileSync(out, 'utf8'));
  assert.is(res.fairness.length, 2, 'the fairness row ran under both servers');
  assert.ok(res.reap, 'the reap row ran');

  const chain = Object.fromEntries(res.chain.map((c: { key: string }) => [c.key, c]));
  assert.equal(Object.keys(chain).sort(), ['c', 'exec', 'inproc', 'node', 'sea', 'sea-exec']);
  for (const c of Object.values(chain) as { without: { mean: number } }[]) assert.ok(c.without.mean > 0, 'every chain row measured');

  assert.is(res.lease.length, 7);
  for (const row of res.lease) {
    assert.is(row.n, 20, row.name);
    assert.is(row.checked, 20, `${row.name}: every lease checked (a tap, on the bridge)`);
    assert.ok(row.p50 > 0 && row.p50 <= row.p99, row.name);
  }
  assert.is(res.lease[0].ca.checked, 20);
  assert.is(res.lease[6].ca.checked, 20, 'the single executable with NODE_EXTRA_CA_CERTS');

  const resident = res.throughput.rows[1];
  assert.is(resident.leases, 64);
  assert.ok(resident.perSecond > 0);
  const samples = res.throughput.samples;
  assert.ok(samples[samples.length - 1].settled);
  assert.ok(samples[samples.length - 1].fds <= samples[0].fds, 'the resident server holds no fd after its clients are gone');

  assert.equal(res.datapath.map((d: { name: string }) => d.name), ['veth', 'macvlan (mkmacvlan)', 'tap bridged by netgrant', 'tap bridged by netgrant, pinned']);
  const pinned = res.datapath[3] as { ratio: Record<number, number>; progNs: Record<string, number> };
  for (const mtu of [1500, 65520]) assert.ok(pinned.ratio[mtu]! > 0, `the pinned tap was paired with an unpinned run at MTU ${mtu}`);
  assert.ok(pinned.progNs['ipv4-tcp']! > 0, 'the pin program was timed');
  for (const d of res.datapath) {
    assert.equal(d.errors, {}, d.name);
    for (const mtu of [1500, 65520]) assert.ok(d.gbps[mtu] > 0, `${d.name} carried traffic at MTU ${mtu}`);
  }

  assert.is(run(['ip', '-j', 'link', 'show', 'type', 'tun']).stdout.trim(), '[]', 'no tap left');
  assert.equal(benchProcesses(), [], 'no process left');
  assert.not.match(readFileSync('/proc/self/mountinfo', 'utf8'), /netgrant-bench/, 'no mount left');
});

test.after(cleanup);
test.run();
