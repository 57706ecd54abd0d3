#!/usr/bin/env node
// npm run bench: every row of docs/perf.md measured side by side in one run,
// printed as a table and written to docs/perf.md (tools/bench/report.mjs).
// Runs as root inside a network and mount namespace of its own: bridges,
// taps, veths, namespaces and servers live only there and go with it.
// BENCH_RUNS (also netgrant-cni's ADD+DEL pairs, at most 20), BENCH_LEASES, BENCH_THROUGHPUT_LEASES, BENCH_IPERF_SECONDS, BENCH_IPERF_REPEATS make
// quick runs (BENCH_FAIR_LEASES too); BENCH_ONLY=chain,lease,throughput,datapath,reap,fairness,cni picks rows and
// BENCH_DATAPATH=veth,macvlan,tap,slirp4netns,pasta the datapath setups;
// BENCH_OUT is where the results go as JSON (default .build/bench.json).
// Only a complete run with the default output rewrites docs/perf.md.
// NETGRANT_BENCH_NS=1: already in a namespace of its own (the smoke test,
// tools/bench/bench.test.ts, inside the test runner's namespace).
// `run.mjs --render FILE` measures nothing: it rewrites docs/perf.md from a
// complete run's saved results.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cpus, loadavg, tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { ensurePackages } from './deps.mjs';
import { bin, root, knobs, sh } from './lib.mjs';
import { measureChain } from './chain.mjs';
import { measureLeases } from './lease.mjs';
import { measureThroughput } from './throughput.mjs';
import { measureDatapath } from './datapath.mjs';
import { measureReap } from './reap.mjs';
import { renderTable, renderPerfMd } from './report.mjs';
import { measureFairness } from './fairness.mjs';
import { fairPerfMd } from './fair-report.mjs';
import { measureCni, cniPerfMd } from './cni.mjs';

const ALL = ['chain', 'lease', 'throughput', 'datapath', 'reap', 'fairness', 'cni'];
/** Rows a saved run may lack and still be rendered (measured since). */
const OPTIONAL = ['fairness', 'cni'];
const verdict = (ok) => (ok ? '**met**' : '**missed**');
const perfMd = (r) => renderPerfMd(r) + fairPerfMd(r, verdict) + cniPerfMd(r, verdict);
const only = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',') : ALL;

if (process.argv[2] === '--render') {
  const saved = JSON.parse(readFileSync(process.argv[3], 'utf8'));
  if (!ALL.every((k) => saved[k] || OPTIONAL.includes(k))) {
    console.error(`bench: fatal: ${process.argv[3]} is not a complete run`);
    process.exit(100);
  }
  writeFileSync(join(root, 'docs', 'perf.md'), perfMd(saved));
  process.exit(0);
}

if (!process.env.NETGRANT_BENCH_NS) {
  if (process.getuid() !== 0) {
    console.error('bench: fatal: run as root (it creates bridges, taps and namespaces, inside a network namespace of its own)');
    process.exit(100);
  }
  ensurePackages();
  if (!existsSync(join(bin, 'mktap'))) {
    console.error('bench: fatal: the toolkit is not built (npm ci, or npm run build)');
    process.exit(100);
  }
  // A fresh network namespace and a private mount namespace.
  // Its own /run/netns and /run/netgrant (the lease lock, the launchers' registry): nothing of the bench's on the host's.
  const script = 'mount --make-rprivate / && mkdir -p /run/netns /run/netgrant && mount -t tmpfs -o mode=0755 netgrant-bench /run/netns && mount -t tmpfs -o mode=0755 netgrant-bench /run/netgrant && ip link set lo up && exec "$@"';
  const r = spawnSync('unshare', ['--net', '--mount', '--', 'sh', '-c', script, 'sh', process.execPath, fileURLToPath(import.meta.url)], {
    stdio: 'inherit',
    env: { ...process.env, NETGRANT_BENCH_NS: '1' },
  });
  process.exit(r.status ?? 111);
}

/**
 * qemu-bridge-helper reads /etc/qemu/bridge.conf: give it one allowing the
 * bridge through an overlay on /etc in this mount namespace only (the host's
 * /etc is never written).
 */
function privateBridgeConf(dir, bridge) {
  const ov = join(dir, 'etc-overlay');
  mkdirSync(ov);
  sh(`mount -t tmpfs netgrant-bench-etc ${ov} && mkdir -p ${ov}/u/qemu ${ov}/w`);
  writeFileSync(join(ov, 'u', 'qemu', 'bridge.conf'), `allow ${bridge}\n`);
  chmodSync(join(ov, 'u', 'qemu', 'bridge.conf'), 0o644);
  sh(`mount -t overlay netgrant-bench-etc -o lowerdir=/etc,upperdir=${ov}/u,workdir=${ov}/w /etc`);
}

const dir = mkdtempSync(join(tmpdir(), 'netgrant-bench-'));
chmodSync(dir, 0o755);
const bridge = 'brb0';
const results = { node: process.version, cpus: cpus().length, knobs, date: new Date().toISOString(), loadBefore: loadavg() };
try {
  // A sysfs showing this namespace's devices (the lease checks read it).
  sh('mount -t sysfs netgrant-bench /sys');
  sh(`ip link add ${bridge} type bridge && ip link set ${bridge} up`);
  privateBridgeConf(dir, bridge);
  if (only.includes('chain')) results.chain = measureChain(dir);
  if (only.includes('lease')) results.lease = await measureLeases(dir, bridge);
  if (only.includes('throughput')) results.throughput = await measureThroughput(dir, bridge);
  if (only.includes('datapath')) results.datapath = await measureDatapath(dir);
  if (only.includes('fairness')) results.fairness = await measureFairness(dir, bridge, Number(process.env.BENCH_FAIR_LEASES ?? Math.min(50, knobs.leases)));
  if (only.includes('reap')) results.reap = await measureReap(dir, bridge);
  if (only.includes('cni')) results.cni = await measureCni(dir);
} finally {
  sh(`umount /etc; umount ${join(dir, 'etc-overlay')}; umount /sys; true`);
  rmSync(dir, { recursive: true, force: true });
}
results.loadAfter = loadavg();

console.log(renderTable(results));
const out = process.env.BENCH_OUT ?? join(root, '.build', 'bench.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(results, null, 2));
if (ALL.every((k) => only.includes(k)) && !process.env.BENCH_DATAPATH && !process.env.BENCH_OUT) {
  writeFileSync(join(root, 'docs', 'perf.md'), perfMd(results));
  console.error('bench: wrote docs/perf.md');
}
