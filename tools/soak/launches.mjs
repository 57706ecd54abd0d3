// The launcher soak: mkmacvlan launches, the registry under churn. Each
// launch is the launcher as root with the client's uid in PEERUID (the
// service chain's last links: `mkmacvlan -c CONF cap-drop --from-peer --
// PROG`), from `concurrency` clients of as many uids at a time. A random
// tenth are SIGKILLed at a random moment (0-1.2 x the median time to an
// address: parsing, the lease lock, the registry entry, the namespace, the
// link, the addresses, the exec, or the program); another tenth hide their
// namespace behind a surviving child for 300 ms after the program exits.
//
// What must hold (the registry's promise, docs/architecture.md): no address
// is ever held by two live launches, and no kill leaves an entry that
// counts once the namespace is gone. A launch's namespace lives from its
// report (it prints its address) until its stdout closes (the program and
// any child hiding the namespace have exited): two launches with one address
// and overlapping lives are a duplicate. Every `sampleEvery` launches the
// clients pause until all have ended; then one probe launch reconciles the
// registry, and while it runs the registry must hold exactly its entry.
import { spawn } from 'node:child_process';
import { readdirSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { percentile, pick } from './stats.mjs';
import { leaseLocks } from './server.mjs';

const TIMEOUT_MS = 60000;
const HIDE_MS = 300;
const REGISTRY = '/run/netgrant/launched';
const running = new Set();

/** SIGKILL every launch still running (the soak is being stopped). */
export function killLaunches() {
  for (const child of running) child.kill('SIGKILL');
}

const entries = () => readdirSync(REGISTRY).filter((n) => !n.startsWith('.')).length;

/**
 * One launch. kill: null, or SIGKILL that many ms after the start. Resolves
 * to { outcome: 'ok' | 'killed' | 'failed', addr, reportedAt, closedAt, ms, detail }.
 */
function launch({ conf, uid, holdMs, hide, kill, env, held = false }) {
  const script = 'echo "$NETADDRS"; if [ "$1" = hide ]; then sleep "$3" & fi; if [ "$1" = held ]; then read x || :; else sleep "$2"; fi';
  const argv = ['mkmacvlan', '-c', conf, '-t', String(TIMEOUT_MS), 'cap-drop', '--from-peer', '--', 'sh', '-c', script, 'sh',
    held ? 'held' : hide ? 'hide' : 'plain', String(holdMs / 1000), String(HIDE_MS / 1000)];
  const started = Date.now();
  const child = spawn(argv[0], argv.slice(1), { env: { ...env, PEERUID: String(uid), PEERGID: String(uid) }, stdio: ['pipe', 'pipe', 'pipe'] });
  running.add(child);
  let out = '';
  let err = '';
  let reportedAt = null;
  let killed = false;
  child.stdout.on('data', (d) => {
    out += d;
    if (reportedAt === null && out.includes('\n')) reportedAt = Date.now();
  });
  child.stderr.on('data', (d) => (err += d));
  const timers = [setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS + 5000)];
  if (kill !== null) timers.push(setTimeout(() => (killed = child.kill('SIGKILL') || killed), kill));
  const done = new Promise((resolve) => {
    // 'close': every holder of the stdout pipe is gone, the hiding child too.
    child.on('close', (code, signal) => {
      running.delete(child);
      timers.forEach(clearTimeout);
      const addr = out.split('\n')[0] || null;
      const base = { addr, reportedAt, closedAt: Date.now(), ms: reportedAt === null ? null : reportedAt - started };
      const detail = `exit ${code ?? signal}: ${(out + err).trim().split('\n').slice(-2).join(' | ')}`;
      if (killed && signal === 'SIGKILL') resolve({ outcome: 'killed', ...base, detail });
      else if (code === 0 && /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(addr ?? '')) resolve({ outcome: 'ok', ...base, detail });
      else resolve({ outcome: 'failed', ...base, detail });
    });
  });
  return { child, done, reported: () => reportedAt !== null };
}

/** Pairs of launches that held one address at once (both reported it, lives overlapping). */
export function duplicates(records) {
  const byAddr = new Map();
  for (const r of records) {
    if (r.reportedAt === null || !r.addr) continue;
    (byAddr.get(r.addr) ?? byAddr.set(r.addr, []).get(r.addr)).push(r);
  }
  const out = [];
  for (const [addr, rs] of byAddr) {
    rs.sort((a, b) => a.reportedAt - b.reportedAt);
    for (let i = 1; i < rs.length; i++) {
      for (let j = 0; j < i; j++) if (rs[i].reportedAt < rs[j].closedAt) out.push(`${addr}: launch ${rs[j].i} (until ${rs[j].closedAt}) and ${rs[i].i} (from ${rs[i].reportedAt})`);
    }
  }
  return out;
}

/** The parent, its subnet and the configuration (on the programs' filesystem, as mkmacvlan requires). */
function setup(confDir, run) {
  run('ip link add ls0 type veth peer name ls1 && ip addr add 10.77.0.1/27 dev ls0 && ip link set ls0 up && ip link set ls1 up');
  mkdirSync(confDir, { recursive: true });
  const conf = join(confDir, 'soak-macvlan.conf');
  // /27: 29 addresses for launches (the host has .1), more than the
  // clients and hidden namespaces alive at once, so a launch is refused
  // only if an entry outlived its namespace.
  writeFileSync(conf, '10.77.0.0/27 parent ls0\nlimit 1000\n');
  chmodSync(conf, 0o644);
  return conf;
}

export async function soakLaunches({ launches, concurrency, sampleEvery, confDir, env, rand, log, run }) {
  const conf = setup(confDir, run);
  const uids = Array.from({ length: concurrency }, (_, k) => 65000 + k);
  const killedAt = new Set(pick(launches, Math.floor(launches / 10), rand));
  const others = [...Array(launches).keys()].filter((i) => !killedAt.has(i));
  const hidden = new Set(pick(others.length, Math.floor(launches / 10), rand).map((k) => others[k]));
  const counts = { ok: 0, killed: 0, failed: 0, hidden: 0 };
  const failures = [];
  const records = [];
  const latencies = [];
  const samples = [];
  const started = Date.now();
  let median = 1000;
  let next = 0;
  const probe = async () => {
    const p = launch({ conf, uid: 64999, holdMs: 0, hide: false, kill: null, env, held: true });
    for (let t = 0; t < 600 && !p.reported(); t++) await new Promise((r) => setTimeout(r, 50));
    const during = entries();
    p.child.stdin.end();
    const r = await p.done;
    return { ok: r.outcome === 'ok', entries: during, detail: r.detail };
  };
  while (next < launches) {
    const end = Math.min(launches, next + sampleEvery);
    const worker = async (slot) => {
      while (next < end) {
        const i = next++;
        const kill = killedAt.has(i) ? Math.floor(rand() * median * 1.2) : null;
        const r = await launch({ conf, uid: uids[slot], holdMs: 20 + Math.floor(rand() * 180), hide: hidden.has(i), kill, env }).done;
        records.push({ ...r, i });
        counts[r.outcome]++;
        if (hidden.has(i) && r.outcome === 'ok') counts.hidden++;
        if (r.ms !== null && r.outcome === 'ok') latencies.push(r.ms);
        if (r.outcome === 'failed' && failures.push(`launch ${i}: ${r.detail}`) <= 3) log(`launcher: launch ${i} failed: ${r.detail}`);
      }
    };
    await Promise.all(uids.map((_, slot) => worker(slot)));
    median = percentile(latencies, 50) || median;
    const p = await probe();
    samples.push({ launches: end, probeOk: p.ok, entries: p.entries, locks: leaseLocks(), probeDetail: p.detail });
    log(`launcher: ${end} launches, ${((Date.now() - started) / 1000).toFixed(0)} s: registry ${p.entries} entr${p.entries === 1 ? 'y' : 'ies'} during the probe, failed ${counts.failed}`);
  }
  const wallMs = Date.now() - started;
  const dups = duplicates(records);
  run('ip link del ls0');
  return {
    kind: 'launcher', launches, concurrency, counts, failures, samples, wallMs, duplicates: dups,
    plannedKills: killedAt.size, plannedHidden: hidden.size,
    latency: { p50: percentile(latencies, 50), p90: percentile(latencies, 90), p99: percentile(latencies, 99), max: percentile(latencies, 100) },
    command: `mkmacvlan -c ${conf} -t ${TIMEOUT_MS} cap-drop --from-peer -- sh -c '…'`,
  };
}

export function launchChecks(r) {
  const survivors = r.launches - r.counts.killed;
  return [
    [`launcher: every launch not killed got an address and ran (${r.counts.ok}/${survivors})`, r.counts.failed === 0 && r.counts.ok === survivors],
    [`launcher: a tenth of the launches were killed at a random step (${r.counts.killed} of ${r.plannedKills} planned; the rest had finished first)`, r.plannedKills === Math.floor(r.launches / 10) && r.counts.killed > 0],
    [`launcher: a tenth hid their namespace behind a surviving child after the program ended (${r.counts.hidden} of ${r.plannedHidden})`, r.plannedHidden === Math.floor(r.launches / 10) && r.counts.hidden === r.plannedHidden],
    [`launcher: no address held by two live launches (${r.duplicates.length} overlaps)`, r.duplicates.length === 0],
    [`launcher: no entry outlived its namespace: after every pause the registry held exactly the probe's entry (${r.samples.map((s) => s.entries).join(', ')})`, r.samples.every((s) => s.probeOk && s.entries === 1)],
    [`launcher: no lease lock held between launches`, r.samples.every((s) => s.locks === 0)],
  ];
}

export function launchSection(r) {
  const killed = r.counts.killed;
  return `### Launches (mkmacvlan, the registry)

    ${r.command}

${r.launches.toLocaleString('en-US')} launches, ${r.concurrency} uids at a time, in ${(r.wallMs / 1000).toFixed(0)} s
(${(r.launches / (r.wallMs / 1000)).toFixed(1)}/s): ${killed} killed at a random step, ${r.counts.hidden}
hidden behind a surviving child, ${r.counts.ok} ran; time to an address p50 / p90 / p99 /
max ${[r.latency.p50, r.latency.p90, r.latency.p99, r.latency.max].map((x) => (Number.isFinite(x) ? x.toFixed(0) : 'n/a')).join(' / ')} ms.
Overlapping holders of one address: ${r.duplicates.length}. Registry entries during
each pause's probe: ${r.samples.map((s) => s.entries).join(', ')} (exactly 1 each: the probe's).
${r.failures.length ? `\nFailed launches (first ${Math.min(5, r.failures.length)}):\n\n${r.failures.slice(0, 5).map((f) => `- ${f}`).join('\n')}\n` : ''}`;
}
