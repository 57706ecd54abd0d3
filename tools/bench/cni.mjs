// Row 7, netgrant-cni (tools/bench/cni.mjs): ADD+DEL latency, as a runtime
// runs a plugin, of netgrant-cni (kind veth, its own pool) against Debian's
// Go plugins for the same work (ptp, a routed veth, with host-local IPAM),
// in one run, each pair on a fresh container namespace; and netgrant-cni's
// VERSION twice (two process starts that do no work: where its time goes).
// Its target, table and docs/perf.md section beside the measurement.
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { bin, knobs, percentile, ENV } from './lib.mjs';

/** The goal (issue 16): at most twice the Go plugins. */
export const CNI_BOUND = 2;
const GO = '/usr/lib/cni';

function plugin(path, env, config) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(path, [], { input: JSON.stringify(config), encoding: 'utf8', env: { ...ENV, CNI_PATH: GO, ...env } });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${path} ${env.CNI_COMMAND}: exit ${r.status}: ${r.stdout.trim()} ${r.stderr.trim()}`);
  return ms;
}

async function container() {
  const proc = spawn('unshare', ['-n', 'sleep', '60'], { stdio: 'ignore' });
  const ns = `/proc/${proc.pid}/ns/net`;
  const self = spawnSync('readlink', ['/proc/self/ns/net'], { encoding: 'utf8' }).stdout;
  for (let i = 0; i < 500 && spawnSync('readlink', [ns], { encoding: 'utf8' }).stdout === self; i++) await new Promise((r) => setTimeout(r, 10));
  return { proc, ns };
}

export async function measureCni(dir, runs = Math.max(3, Math.min(knobs.runs, 20))) {
  const pool = join(dir, 'cni-pool.conf');
  writeFileSync(pool, '10.99.0.0/24\n');
  chmodSync(pool, 0o644);
  const ours = { cniVersion: '1.0.0', name: 'bench', type: 'netgrant-cni', kind: 'veth', config: pool };
  const ptp = { cniVersion: '1.0.0', name: 'benchptp', type: 'ptp', ipam: { type: 'host-local', dataDir: join(dir, 'cni-ipam'), ranges: [[{ subnet: '10.98.0.0/24' }]], routes: [{ dst: '0.0.0.0/0' }] } };
  const rows = { netgrant: [], go: [], starts: [] };
  for (let i = 0; i < runs; i++) {
    // Interleaved, so that load changes hit both alike.
    for (const [key, path, config] of [['netgrant', join(bin, 'netgrant-cni'), ours], ['go', join(GO, 'ptp'), ptp]]) {
      const c = await container();
      try {
        const env = { CNI_CONTAINERID: `bench${i}`, CNI_NETNS: c.ns, CNI_IFNAME: 'eth0' };
        rows[key].push(plugin(path, { ...env, CNI_COMMAND: 'ADD' }, config) + plugin(path, { ...env, CNI_COMMAND: 'DEL' }, config));
      } finally {
        const exited = new Promise((r) => c.proc.once('exit', r));
        c.proc.kill('SIGKILL');
        await exited;
      }
    }
    rows.starts.push(plugin(join(bin, 'netgrant-cni'), { CNI_COMMAND: 'VERSION' }, { cniVersion: '1.0.0' }) * 2);
  }
  const stat = (v) => ({ n: v.length, p50: percentile(v, 50), p99: percentile(v, 99) });
  const r = { netgrant: stat(rows.netgrant), go: stat(rows.go), starts: stat(rows.starts) };
  console.error(`cni: ADD+DEL netgrant-cni p50 ${r.netgrant.p50.toFixed(1)} ms, ptp+host-local ${r.go.p50.toFixed(1)} ms, two bare netgrant-cni starts ${r.starts.p50.toFixed(1)} ms`);
  return r;
}

const f1 = (x) => x.toFixed(1);

export function cniTargets(r) {
  if (!r.cni) return [];
  const ratio = r.cni.netgrant.p50 / r.cni.go.p50;
  return [{ row: 7, what: `netgrant-cni ADD+DEL ≤ ${CNI_BOUND}× Debian's ptp + host-local (p50)`, value: `${ratio.toFixed(2)}× (${f1(r.cni.netgrant.p50)} vs ${f1(r.cni.go.p50)} ms)`, ok: ratio <= CNI_BOUND }];
}

export function cniSection(r) {
  const c = r.cni;
  return [
    '| plugin | pairs | ADD+DEL p50 ms | p99 ms |',
    '|---|---|---|---|',
    `| netgrant-cni (veth, its pool) | ${c.netgrant.n} | ${f1(c.netgrant.p50)} | ${f1(c.netgrant.p99)} |`,
    `| ptp + host-local (Debian, Go) | ${c.go.n} | ${f1(c.go.p50)} | ${f1(c.go.p99)} |`,
    `| netgrant-cni VERSION, twice (two starts, no work) | ${c.starts.n} | ${f1(c.starts.p50)} | ${f1(c.starts.p99)} |`,
  ].join('\n');
}

export function cniPerfMd(r, verdict) {
  if (!r.cni) return '';
  const t = cniTargets(r)[0];
  return `
## 7. netgrant-cni: ADD+DEL against Debian's Go plugins

Each pair on a fresh container namespace, run as a runtime runs a
plugin (tools/bench/cni.mjs): netgrant-cni (a routed veth from its own
pool) and ptp with host-local IPAM (a routed veth, two Go binaries per
command), interleaved. Goal: ${t.what}: ${t.value}, ${verdict(t.ok)}.

${cniSection(r)}

Where the time goes: the third row is two netgrant-cni starts doing
nothing (VERSION), the Node start of each command; the rest of
netgrant-cni's pair is the work (the lease lock, the netlink calls, the
pin filter's BPF load, the kernel's veth deletion). ptp pays two Go starts
per command (ptp, and host-local exec'd by it).${floor(r)}
`;
}

/** The floor any Node plugin has: two bare Node starts (row 1's `node -e 0`, same run) against ptp's whole pair. */
function floor(r) {
  const node = r.chain?.find((c) => c.key === 'node');
  if (!node) return '';
  const two = 2 * node.without.mean;
  return ` Two bare Node starts (\`node -e 0\`, row 1 of this run: ${f1(node.without.mean)} ms each) take ${f1(two)} ms, ${(two / r.cni.go.p50).toFixed(2)}× ptp's whole pair: the ${CNI_BOUND}× goal leaves ${f1(Math.max(0, CNI_BOUND * r.cni.go.p50 - two))} ms for loading the toolkit and doing the work of both commands, which netgrant-cni, a Node program run once per command, does not meet. What was cut: the lease tables (mkveth's NAT, culled before each lease) are listed over nfnetlink instead of by running nft (one process start per ADD, and one more per table).`;
}
