// Soak one server: `leases` tap leases from `concurrency` clients at a time,
// a random tenth of them SIGKILLed mid-lease, another tenth greedy (they
// persist and re-own their taps through the fd, which the lease layer must
// end: netgrant-reap beside s6-ipcserver, netgrant-serve's own reaper). Every `sampleEvery` leases the
// clients pause until every lease has ended, and the server's open fds, RSS
// and children, the taps left in the namespace and the quota locks held are
// sampled.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chain, startServer, startReaper, footprint, countTaps, leaseLocks, groupMembers } from './server.mjs';
import { lease } from './lease.mjs';
import { percentile, pick } from './stats.mjs';

/** Wait (up to 5 s) until the server has no child left and no tap remains: the lease traffic has settled. */
async function settle(server) {
  for (let i = 0; i < 100; i++) {
    if (footprint(server.pid).children === 0 && countTaps() === 0) return;
    await sleep(50);
  }
}

async function sample(server, leases) {
  await settle(server);
  return { leases, ...footprint(server.pid), taps: countTaps(), locks: leaseLocks(), fullGcs: server.fullGcHeapMb().length };
}

/** CPU seconds (user + system) of this process's waited-for descendants: every client, every server and its children. */
function childrenCpu() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / 100; // cutime, cstime in clock ticks (USER_HZ = 100)
}

export async function soak({ kind, leases, concurrency, sampleEvery, bridge, uid, dir, env, node, bin, rand, log }) {
  const sock = join(dir, `${kind}.sock`);
  const maxPerPeer = concurrency * 2;
  const cpuBefore = childrenCpu();
  const reaper = kind === 's6' ? startReaper(env) : null;
  const server = await startServer(kind, { sock, argv: chain(bridge, uid, maxPerPeer), concurrency, env, node, bin });
  // A tenth of the leases are killed: half once the client holds its tap,
  // half at a random moment of the chain (connect, peer-check, mktap, fd-send, fd-recv).
  const killed = pick(leases, Math.floor(leases / 10), rand);
  const plan = new Map(killed.map((i, n) => [i, n % 2 === 0 ? 'holding' : 'chain']));
  // And a tenth, among the others, are greedy.
  const killedSet = new Set(killed);
  const others = [...Array(leases).keys()].filter((i) => !killedSet.has(i));
  const greedy = new Set(pick(others.length, Math.floor(leases / 10), rand).map((k) => others[k]));
  const counts = { ok: 0, 'killed-holding': 0, 'killed-chain': 0, failed: 0, greedy: 0 };
  const failures = [];
  const latencies = [];
  const samples = [await sample(server, 0)];
  const started = Date.now();
  let next = 0;
  let median = 100;
  const one = async (i) => {
    const p = plan.get(i);
    const kill = p === undefined ? null : p === 'holding' ? 'holding' : Math.floor(rand() * median * 1.2);
    const r = await lease({ sock, uid, bridge, holdMs: 5 + Math.floor(rand() * 45), kill, greedy: greedy.has(i), env });
    counts[r.outcome]++;
    if (greedy.has(i) && r.outcome === 'ok') counts.greedy++;
    if (r.ms !== null) latencies.push(r.ms);
    if (r.outcome === 'failed' && failures.push(`lease ${i}: ${r.detail}`) <= 3) log(`${kind}: lease ${i} failed: ${r.detail}`);
  };
  while (next < leases) {
    const end = Math.min(leases, next + sampleEvery);
    const worker = async () => {
      while (next < end) await one(next++);
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    median = percentile(latencies, 50) || median;
    samples.push(await sample(server, end));
    const s = samples[samples.length - 1];
    log(`${kind}: ${end} leases, ${((Date.now() - started) / 1000).toFixed(0)} s: server fds ${s.fds}, RSS ${s.rssKb} kB, taps ${s.taps}, failed ${counts.failed}`);
  }
  const wallMs = Date.now() - started;
  const aliveAtEnd = server.alive();
  const end = await server.stop();
  await sleep(100);
  const tapsAfterStop = countTaps();
  await reaper?.stop();
  const cpuSeconds = childrenCpu() - cpuBefore;
  return {
    kind,
    command: server.command.join(' '),
    leases,
    concurrency,
    plannedKills: { holding: [...plan.values()].filter((v) => v === 'holding').length, chain: [...plan.values()].filter((v) => v === 'chain').length },
    plannedGreedy: greedy.size,
    counts,
    failures,
    wallMs,
    cpuSeconds,
    latency: { p50: percentile(latencies, 50), p90: percentile(latencies, 90), p99: percentile(latencies, 99), max: percentile(latencies, 100) },
    samples,
    aliveAtEnd,
    end,
    tapsAfterStop,
    locksAfterStop: leaseLocks(),
    processesLeft: groupMembers(server.pid),
    serverLog: server.log() + (reaper ? reaper.log() : ''),
    fullGcHeapMb: server.fullGcHeapMb(),
  };
}
