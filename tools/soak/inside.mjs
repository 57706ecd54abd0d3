// The soak itself, inside the namespace run.mjs made: a bridge, each
// server in turn, the checks, the report.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, chmodSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { options, finish, fatal, FULL, FULL_LAUNCHES } from './cli.mjs';
import { soakLaunches, launchChecks, killLaunches } from './launches.mjs';
import { soak } from './soak.mjs';
import { killClients } from './lease.mjs';
import { killServers } from './server.mjs';
import { checks } from './checks.mjs';
import { report } from './report.mjs';
import { prng } from './stats.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
// Clients check the fds they hold: fds the soak inherited must not reach them.
createRequire(import.meta.url)('koffi').load('libc.so.6').func('int close_range(unsigned int, unsigned int, int)')(3, 0xffffffff, 4 /* CLOSE_RANGE_CLOEXEC */);
const { leasesFor, concurrency, seed, kinds } = options();
if (!existsSync(join(root, 'packages', 'netgrant', 'dist', 'netgrant.cjs'))) fatal('the toolkit is not built (npm run build)');

// A clean environment: the toolkit, then the Node under test; no
// NODE_EXTRA_CA_CERTS (36 ms per Node start, docs/perf.md) or other NODE_*.
const node = process.env.NETGRANT_NODE || process.execPath;
const bin = join(root, 'node_modules', '.bin');
const env = { PATH: `${bin}:${dirname(node)}:/usr/sbin:/usr/bin:/sbin:/bin` };
const bridge = 'br-soak';
const uid = 65534;
if (spawnSync('sh', ['-c', `ip link add ${bridge} type bridge && ip link set ${bridge} up`], { env, stdio: 'inherit' }).status !== 0) fatal('cannot create the bridge');
const dir = mkdtempSync('/tmp/netgrant-soak-');
chmodSync(dir, 0o755);
// Stopped early: everything this soak started goes with it.
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killClients();
    killLaunches();
    killServers();
    rmSync(dir, { recursive: true, force: true });
    finish([`FAIL stopped by ${sig}`], 0, 1);
  });
}
const nodeVersion = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
const log = (s) => console.error(`soak: ${s}`);
log(`seed ${seed}, ${concurrency} clients at a time, Node ${nodeVersion}`);

const results = [];
let launched = null;
let error = null;
try {
  for (const kind of kinds) {
    const leases = leasesFor[kind];
    if (kind === 'launcher') {
      log(`launcher: ${leases} launches`);
      const sh = (script) => {
        if (spawnSync('sh', ['-c', script], { env, stdio: 'inherit' }).status !== 0) throw new Error(`${script}: failed`);
      };
      launched = await soakLaunches({ launches: leases, concurrency, sampleEvery: Math.ceil(leases / 10), confDir: join(root, '.build', 'soak'), env, rand: prng(seed + kinds.indexOf(kind)), log, run: sh });
      continue;
    }
    log(`${kind}: ${leases} leases`);
    results.push(await soak({ kind, leases, concurrency, sampleEvery: Math.min(1000, Math.ceil(leases / 10)), bridge, uid, dir, env, node, bin, rand: prng(seed + kinds.indexOf(kind)), log }));
  }
} catch (e) {
  error = e;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
if (error) finish([`FAIL the soak could not run: ${error.message}`], 0, 1);

const all = [...results.flatMap(checks), ...(launched ? launchChecks(launched) : [])];
const full = results.length === 2 && results.every((r) => r.leases >= FULL) && launched?.launches >= FULL_LAUNCHES;
const out = full ? join(root, 'docs', 'soak.md') : join(root, '.build', 'soak.md');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, report({ results, launched, checks: all, seed, concurrency, nodeVersion }));
log(`wrote ${out.slice(root.length + 1)}`);
finish(all.map(([name, ok]) => `${ok ? 'ok  ' : 'FAIL'} ${name}`), all.filter(([, ok]) => ok).length, all.filter(([, ok]) => !ok).length);
