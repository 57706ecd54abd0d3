#!/usr/bin/env node
// npm run soak: 10,000 tap leases through the tap service, under
// s6-ipcserver and under the resident netgrant-serve, a random tenth of
// the clients SIGKILLed mid-lease; checks that nothing is left and the
// server stays flat, writes docs/soak.md, ends with `N passed, N failed`.
//
//   node tools/soak/run.mjs [--summary FILE]
//
// Knobs (environment): SOAK_LEASES (10000), SOAK_S6_LEASES (SOAK_LEASES),
// SOAK_CONCURRENCY (12), SOAK_SERVERS (resident,s6), SOAK_SEED (random),
// NETGRANT_NODE (the Node binary the toolkit runs under). docs/soak.md is
// written only by a run with the full counts; other runs write .build/soak.md.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, chmodSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomInt } from 'node:crypto';
import { createRequire } from 'node:module';
import { soak } from './soak.mjs';
import { checks } from './checks.mjs';
import { report } from './report.mjs';
import { prng } from './stats.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
// Clients check the fds they hold: fds the soak inherited must not reach them.
createRequire(import.meta.url)('koffi').load('libc.so.6').func('int close_range(unsigned int, unsigned int, int)')(3, 0xffffffff, 4 /* CLOSE_RANGE_CLOEXEC */);
const FULL = 10000;
const knob = (name, def) => {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  if (!/^\d+$/.test(v) || Number(v) < 1) {
    console.error(`soak: fatal: ${name} must be a positive integer, not ${JSON.stringify(v)}`);
    console.log('0 passed, 1 failed');
    process.exit(100);
  }
  return Number(v);
};
const leasesAll = knob('SOAK_LEASES', FULL);
const leasesFor = { resident: leasesAll, s6: knob('SOAK_S6_LEASES', leasesAll) };
const concurrency = knob('SOAK_CONCURRENCY', 12);
const seed = knob('SOAK_SEED', randomInt(1, 2 ** 31));
const kinds = (process.env.SOAK_SERVERS || 'resident,s6').split(',');
const summaryAt = process.argv.indexOf('--summary');
const summaryFile = summaryAt > 0 ? process.argv[summaryAt + 1] : '';

function finish(lines, passed, failed) {
  const line = `${passed} passed, ${failed} failed`;
  for (const l of lines) console.log(l);
  if (summaryFile) writeFileSync(summaryFile, line + '\n');
  console.log(line);
  process.exit(failed ? 1 : 0);
}

if (process.getuid() !== 0) {
  console.error('soak: fatal: must run as root (it runs a root tap service in a namespace of its own)');
  finish([], 0, 1);
}
if (kinds.some((k) => !(k in leasesFor))) {
  console.error(`soak: fatal: SOAK_SERVERS lists resident and s6, not ${JSON.stringify(process.env.SOAK_SERVERS)}`);
  finish([], 0, 1);
}

if (!process.env.NETGRANT_SOAK_INNER) {
  // Re-run inside a fresh network and mount namespace, with this
  // namespace's sysfs: nothing reaches the host's network namespace.
  const script = 'mount --make-rprivate / && mount -t sysfs netgrant-soak /sys && ip link set lo up && exec "$@"';
  const r = spawnSync('unshare', ['--net', '--mount', '--', 'sh', '-c', script, 'sh', process.execPath, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, NETGRANT_SOAK_INNER: '1', SOAK_SEED: String(seed) },
  });
  process.exit(r.status ?? 1);
}

const node = process.env.NETGRANT_NODE || process.execPath;
const bin = join(root, 'node_modules', '.bin');
if (!existsSync(join(root, 'packages', 'netgrant', 'dist', 'netgrant.cjs'))) {
  console.error('soak: fatal: the toolkit is not built (npm run build)');
  finish([], 0, 1);
}
// A clean environment: the toolkit, then the Node under test; no
// NODE_EXTRA_CA_CERTS (36 ms per Node start, docs/perf.md) or other NODE_*.
const env = { PATH: `${bin}:${dirname(node)}:/usr/sbin:/usr/bin:/sbin:/bin` };
const bridge = 'br-soak';
const uid = 65534;
const sh = (cmd) => spawnSync('sh', ['-c', cmd], { env, stdio: 'inherit' }).status === 0;
if (!sh(`ip link add ${bridge} type bridge && ip link set ${bridge} up`)) finish(['soak: cannot create the bridge'], 0, 1);
const dir = mkdtempSync('/tmp/netgrant-soak-');
chmodSync(dir, 0o755);
const nodeVersion = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
const log = (s) => console.error(`soak: ${s}`);
log(`seed ${seed}, ${concurrency} clients at a time, Node ${nodeVersion}`);

const results = [];
let error = null;
try {
  for (const kind of kinds) {
    const leases = leasesFor[kind];
    log(`${kind}: ${leases} leases`);
    results.push(await soak({ kind, leases, concurrency, sampleEvery: Math.min(1000, Math.ceil(leases / 10)), bridge, uid, dir, env, rand: prng(seed + kinds.indexOf(kind)), log }));
  }
} catch (e) {
  error = e;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
if (error) finish([`FAIL the soak could not run: ${error.message}`], 0, 1);

const all = results.flatMap(checks);
const full = results.every((r) => r.leases >= FULL);
const out = full ? join(root, 'docs', 'soak.md') : join(root, '.build', 'soak.md');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, report({ results, checks: all, seed, concurrency, nodeVersion }));
log(`wrote ${out.slice(root.length + 1)}`);
finish(all.map(([name, ok]) => `${ok ? 'ok  ' : 'FAIL'} ${name}`), all.filter(([, ok]) => ok).length, all.filter(([, ok]) => !ok).length);
