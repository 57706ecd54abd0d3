// Tables, text charts and targets from one run's results; docs/perf.md.
// The prose on where the time goes lives in notes.mjs.
import { MTUS } from './datapath.mjs';
import { notes } from './notes.mjs';
import { fairTargets, fairSection } from './fair-report.mjs';
import { cniTargets, cniSection } from './cni.mjs';
import { HEAP_BAND_MB, RSS_BAND_KB, WARM_LEASES } from '../soak/checks.mjs';

const f1 = (x) => (x === undefined ? 'n/a' : x.toFixed(1));
const f2 = (x) => (x === undefined ? 'n/a' : x.toFixed(2));
const verdict = (ok) => (ok ? '**met**' : '**missed**');

/** A text bar chart: one line per [label, value], scaled to the largest. */
export function chart(items, unit, width = 46) {
  const max = Math.max(...items.map(([, v]) => v ?? 0));
  const labelWidth = Math.max(...items.map(([l]) => l.length));
  return items
    .map(([label, v]) => `${label.padEnd(labelWidth)} ${(v === undefined ? '' : '#'.repeat(Math.max(1, Math.round((v / max) * width)))).padEnd(width)} ${v === undefined ? 'n/a' : f2(v)} ${unit}`)
    .join('\n');
}

const table = (head, rows) => [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');

/** Each target of the issue, computed from the results present. */
export function targets(r) {
  const t = [];
  if (r.chain) {
    const by = Object.fromEntries(r.chain.map((c) => [c.key, c]));
    const ratio = by.inproc.without.mean / by.node.without.mean;
    const ratioCa = by.inproc.withCa.mean / by.node.withCa.mean;
    const ratioMin = by.inproc.without.min / by.node.without.min;
    t.push({ row: 1, what: 'in-process chain ≤ 1.25 × `node -e 0` (means)', value: `${f2(ratio)} × (fastest runs: ${f2(ratioMin)} ×; with NODE_EXTRA_CA_CERTS: ${f2(ratioCa)} ×)`, ok: ratio <= 1.25 });
    if (by.sea) {
      const sea = by.sea.without.mean / by.node.without.mean;
      t.push({ row: 1, what: 'single executable, in-process chain ≤ 1.25 × `node -e 0` (means)', value: `${f2(sea)} × (with NODE_EXTRA_CA_CERTS: ${f2(by.sea.withCa.mean / by.node.withCa.mean)} ×)`, ok: sea <= 1.25 });
    }
  }
  if (r.lease) {
    const [, resident, , qbh, , raw] = r.lease;
    t.push({ row: 2, what: "resident p50 ≤ ½ × qemu-bridge-helper's p50", value: `${f2(resident.p50)} ms vs ${f2(qbh.p50)} ms (${f2(resident.p50 / qbh.p50)} ×)`, ok: resident.p50 <= qbh.p50 / 2 });
    t.push({ row: 2, what: 'resident p50 ≤ 3 × the raw kernel cost', value: `${f2(resident.p50)} ms vs ${f2(raw.p50)} ms (${f2(resident.p50 / raw.p50)} ×)`, ok: resident.p50 <= 3 * raw.p50 });
  }
  if (r.throughput) {
    // Mid-run samples include the connections in flight; the settled one
    // (all clients done) is compared with the start. RSS and the live heap
    // are judged as the soak judges them (tools/soak/checks.mjs): from the
    // warm-up on, within a band a leak per lease would leave.
    const s = r.throughput.samples;
    const start = s[0];
    const settled = s[s.length - 1];
    const warm = s.filter((x) => x.leases >= WARM_LEASES);
    const rss = warm.map((x) => x.rss_kb);
    const heap = (r.throughput.fullGcHeapMb ?? []).slice(warm[0]?.full_gcs ?? 0);
    t.push({ row: 3, what: 'resident server: open fds after the run = before it', value: `${start.fds} → ${settled.fds} fds`, ok: settled.fds <= start.fds });
    t.push({ row: 3, what: `resident server: live JS heap after full GCs flat from ${WARM_LEASES} leases on (band ${HEAP_BAND_MB} MB)`, value: heap.length >= 2 ? `${f1(Math.min(...heap))}..${f1(Math.max(...heap))} MB over ${heap.length} full GCs` : `${heap.length} full GCs after the warm-up: too few to judge`, ok: heap.length >= 2 && Math.max(...heap) - Math.min(...heap) <= HEAP_BAND_MB });
    if (rss.length) t.push({ row: 3, what: `resident server: RSS within ${RSS_BAND_KB / 1024} MiB from ${WARM_LEASES} leases on`, value: `${f1(Math.min(...rss) / 1024)}..${f1(Math.max(...rss) / 1024)} MiB`, ok: Math.max(...rss) - Math.min(...rss) <= RSS_BAND_KB });
  }
  if (r.datapath) {
    const by = Object.fromEntries(r.datapath.map((d) => [d.name, d]));
    const slirp = by.slirp4netns?.gbps[1500];
    const veth = by.veth?.gbps ?? {};
    for (const name of ['macvlan (mkmacvlan)', 'tap bridged by netgrant']) {
      const g = by[name]?.gbps ?? {};
      t.push({ row: 4, what: `${name} ≥ 4 × slirp4netns at MTU 1500`, value: `${f2(g[1500])} vs ${f2(slirp)} Gbit/s (${f1(g[1500] / slirp)} ×)`, ok: g[1500] >= 4 * slirp });
      for (const mtu of MTUS) t.push({ row: 4, what: `${name} within 10% of the veth at MTU ${mtu}`, value: `${f2(g[mtu])} vs ${f2(veth[mtu])} Gbit/s (${f2(g[mtu] / veth[mtu])} ×)`, ok: g[mtu] >= 0.9 * veth[mtu] });
    }
    // Per-lease pinning (issue 11): the pinned tap against the unpinned one,
    // same chain and pump, each run paired with an unpinned one (the median
    // of the pairs' ratios).
    const pinned = by['tap bridged by netgrant, pinned'];
    if (pinned) for (const mtu of MTUS) t.push({ row: 4, what: `pinned tap ≥ 95% of the unpinned tap at MTU ${mtu} (paired runs)`, value: `${f2(pinned.gbps[mtu])} Gbit/s pinned, ratio ${f2(pinned.ratio?.[mtu])} ×${pinned.progNs ? ` (the program: ${pinned.progNs['ipv4-tcp']} ns per IPv4 frame, ${pinned.progNs['ipv6-tcp']} ns per IPv6)` : ''}${pinned.pathCost?.[mtu] ? `; host path CPU per 1500-byte frame ${pinned.pathCost[mtu].unpinnedNs} → ${pinned.pathCost[mtu].pinnedNs} ns` : ''}`, ok: pinned.ratio?.[mtu] >= 0.95 });
  }
  if (r.reap) {
    for (const x of r.reap) t.push({ row: 5, what: `${x.server}, ${x.holder} holder: tap deleted within 1 s of its holder's exit (p99)`, value: `p99 ${f1(x.afterExit.p99)} ms, max ${f1(x.afterExit.max)} ms over ${x.n} leases`, ok: x.afterExit.p99 < 1000 });
  }
  t.push(...fairTargets(r));
  t.push(...cniTargets(r));
  return t;
}

function reapSection(r) {
  const ms = (s) => (s ? `${f1(s.p50)} / ${f1(s.p99)} / ${f1(s.max)}` : '-');
  return table(['server', 'holder', 'leases', "ms from the holder's exit to the deletion: p50 / p99 / max", 'ms from the tamper to the deletion: p50 / p99 / max'], r.reap.map((x) => [x.server, x.holder, String(x.n), ms(x.afterExit), ms(x.afterTamper)]));
}

function chainSection(r) {
  const rows = r.chain.map((c) => [c.name, `${f1(c.without.mean)} ± ${f1(c.without.stddev)}`, f1(c.without.min), `${f1(c.withCa.mean)} ± ${f1(c.withCa.stddev)}`, f1(c.withCa.min)]);
  const items = r.chain.flatMap((c) => [[c.name, c.without.mean], ['  + NODE_EXTRA_CA_CERTS', c.withCa.mean]]);
  return { table: table(['chain', 'ms, no NODE_EXTRA_CA_CERTS', 'fastest', 'ms, with NODE_EXTRA_CA_CERTS', 'fastest'], rows), chart: chart(items, 'ms') };
}

function leaseSection(r) {
  const rows = r.lease.flatMap((l) => [
    [l.name, String(l.n), f2(l.min), f2(l.p50), f2(l.p99), f2(l.mean)],
    ...(l.ca ? [['  + NODE_EXTRA_CA_CERTS', String(l.ca.n), f2(l.ca.min), f2(l.ca.p50), f2(l.ca.p99), f2(l.ca.mean)]] : []),
  ]);
  const items = r.lease.flatMap((l) => [[l.name, l.p50], ...(l.ca ? [['  + NODE_EXTRA_CA_CERTS', l.ca.p50]] : [])]);
  return { table: table(['lease (connect to fd in hand)', 'leases', 'min ms', 'p50 ms', 'p99 ms', 'mean ms'], rows), chart: chart(items, 'ms p50') };
}

function throughputSection(r) {
  const t = r.throughput;
  const rows = t.rows.flatMap((x) => [[x.name, String(x.leases), f1(x.perSecond)], ...(x.ca ? [['  + NODE_EXTRA_CA_CERTS', String(x.ca.leases), f1(x.ca.perSecond)]] : [])]);
  const heap = t.fullGcHeapMb ?? [];
  const samples = table(['leases served', 'RSS MiB', 'open fds', 'full GCs so far', 'live JS heap after the last, MB'], t.samples.map((s) => [
    `${s.leases}${s.settled ? ' (settled)' : ''}`, f1(s.rss_kb / 1024), String(s.fds), String(s.full_gcs ?? 'n/a'), s.full_gcs ? f1(heap[s.full_gcs - 1]) : '-',
  ]));
  const items = t.rows.flatMap((x) => [[x.name, x.perSecond], ...(x.ca ? [['  + NODE_EXTRA_CA_CERTS', x.ca.perSecond]] : [])]);
  return { table: table([`${t.clients} clients at once`, 'leases', 'leases/s'], rows), samples, chart: chart(items, 'leases/s') };
}

function datapathSection(r) {
  const cell = (d, mtu) => (d.gbps[mtu] !== undefined ? f2(d.gbps[mtu]) : `failed: ${d.errors[mtu]}`);
  const rows = r.datapath.map((d) => [d.name, ...MTUS.map((m) => cell(d, m))]);
  const items = r.datapath.flatMap((d) => MTUS.map((m) => [`${d.name}, MTU ${m}`, d.gbps[m]]));
  return { table: table(['launched namespace → host side', ...MTUS.map((m) => `Gbit/s, MTU ${m}`)], rows), chart: chart(items, 'Gbit/s') };
}

/** The terminal table: every section present, then the targets. */
export function renderTable(r) {
  const parts = [];
  if (r.chain) parts.push('1. Chain overhead', chainSection(r).table);
  if (r.lease) parts.push('2. Tap lease latency', leaseSection(r).table);
  if (r.throughput) parts.push('3. Throughput and the resident server', throughputSection(r).table, throughputSection(r).samples);
  if (r.datapath) parts.push('4. Datapath (iperf3)', datapathSection(r).table);
  if (r.reap) parts.push('5. How long a lease outlives its holder', reapSection(r));
  if (r.fairness) parts.push('6. Fair service under a stalling uid', fairSection(r));
  if (r.cni) parts.push('7. netgrant-cni ADD+DEL vs ptp + host-local', cniSection(r));
  parts.push('Targets', table(['row', 'target', 'measured', ''], targets(r).map((t) => [String(t.row), t.what, t.value, t.ok ? 'met' : 'MISSED'])));
  return parts.join('\n\n');
}

/** docs/perf.md for a complete run. */
export function renderPerfMd(r) {
  const c = chainSection(r);
  const l = leaseSection(r);
  const t = throughputSection(r);
  const d = datapathSection(r);
  const all = targets(r);
  const tgt = (row) => all.filter((x) => x.row === row).map((x) => `- ${x.what}: ${x.value} — ${verdict(x.ok)}`).join('\n');
  const n = notes(r);
  return `# Performance

Measured by \`npm run bench\` (tools/bench/run.mjs) on this project's
machine (${r.cpus} vCPU, Node ${r.node}), every row in one run on
${r.date.slice(0, 10)}, inside a network namespace of the benchmark's own.
Load average ${r.loadBefore.map(f2).join(', ')} when the run started and
${r.loadAfter.map(f2).join(', ')} when it ended (the benchmark's own work counts in it;
a load near or above ${r.cpus} means other work shared the CPUs and every
latency here waited for them). Regenerate with \`npm run bench\` (from a fresh clone:
\`npm ci && npm run bench\`; as root; it installs the Debian packages it
needs, ~10–15 minutes on this machine). Quick runs: \`BENCH_RUNS\`, \`BENCH_LEASES\`,
\`BENCH_THROUGHPUT_LEASES\`, \`BENCH_IPERF_SECONDS\`, \`BENCH_IPERF_REPEATS\`.

## Targets

| row | target | measured | |
|---|---|---|---|
${all.map((x) => `| ${x.row} | ${x.what} | ${x.value} | ${verdict(x.ok)} |`).join('\n')}

## 1. Chain overhead: five links, then /bin/true

hyperfine -N, ${r.knobs.runs} runs after 3 warm-ups. The netgrant links are
\`peer-check -E -a\` (a real link: it reads the UCSPI environment, looks up
the peer's groups, exports PEERUID/PEERGID/PEERPID, hands on).

${c.table}

\`\`\`
${c.chart}
\`\`\`

${tgt(1)}

${n.chain}

## 2. Tap lease latency

Connect to fd in hand, ${r.lease[0].n} leases one after another (after 10
warm-ups), each a tap with a virtio-net header on a bridge: the chain
\`peer-check -u 0 mktap -b brb0 --vnet-hdr --owner-from-peer fd-send -s 1 -d 3\`
under s6-ipcserver and under netgrant-serve. The client
(tools/bench/lease-client.py, one process) checks every lease after its
clock stops: the fd is a tap (TUNGETIFF) and the device is on the bridge.
Debian's qemu-bridge-helper is driven the way QEMU drives it (socketpair,
fork/exec \`--use-vnet --br=brb0 --fd=N\`, receive the byte and the fd,
waitpid), with a private bridge.conf (an overlay on /etc in the benchmark's
mount namespace). The raw kernel cost is tools/bench/raw-tap.ts: one Node
process looping over the same open/TUNSETIFF/netlink calls through
@netgrant/core, no process start.

${l.table}

\`\`\`
${l.chart}
\`\`\`

${tgt(2)}

${n.lease}

## 3. Throughput with ${r.throughput.clients} clients, and the resident server over time

${r.throughput.clients} client threads lease as fast as they can; every lease is checked as in row 2.

${t.table}

\`\`\`
${t.chart}
\`\`\`

The resident server's RSS and open fds (from /proc) after every 1,000 of
${r.throughput.rows[1].leases} leases:

${t.samples}

${tgt(3)}

${n.throughput}

## 4. Datapath: iperf3 from a launched namespace to its host side

iperf3 TCP, the median of ${r.knobs.iperfRepeats ?? 1} runs of ${r.knobs.iperfSeconds} s per cell, client in the
launched namespace, server in the benchmark's namespace (the host side).

- **macvlan (mkmacvlan)**: \`mkmacvlan -c CONF iperf3 -c ...\` — iperf3 runs
  in the namespace mkmacvlan creates, on a macvlan (bridge mode) whose
  parent is a veth end (this kernel has no dummy module); the host side is
  a second macvlan on that parent (a macvlan never reaches its parent's
  own addresses).
- **tap bridged by netgrant**: \`mktap -b brd0 --vnet-hdr mktap -N NS --vnet-hdr tap-pump 3 4\`:
  one tap on a bridge that holds the host side's address, a second tap
  inside the launched namespace, and tools/bench/tap-pump.c moving frames
  between their fds. A tap needs a program on its fd side; in production
  that is a VM's network backend, here the pump stands in for it (no KVM
  on this machine: a QEMU guest under TCG would measure the emulator).
  Like QEMU it enables the offloads (TUNSETOFFLOAD), so large segments
  cross whole.
- **veth**: a plain veth pair, the reference.
- **slirp4netns**, **pasta**: the launched namespace reaches the host side's
  loopback through them.

${d.table}

\`\`\`
${d.chart}
\`\`\`

${tgt(4)}

${n.datapath}
${r.reap ? `
## 5. How long a lease outlives its holder

A client with no capability takes a tap through the service (\`peer-check
mktap -b ... fd-send\`) and exits, ${r.reap[0].n} leases per cell, one after
another (tools/bench/reap.mjs). **Cooperative**: it just closes its fd, and
the kernel deletes the tap. **Hostile**: before exiting it makes the tap
persistent and gives it to root through the fd (\`TUNSETPERSIST\`,
\`TUNSETOWNER\`), so the kernel would keep it for ever; the reaper
(netgrant-reap beside s6-ipcserver, netgrant-serve's own) deletes it. The
deletion is the kernel's RTM_DELLINK as \`ip -ts monitor link\` stamps it; a
hostile lease is usually deleted at its TUNSETPERSIST notification, before
its holder has exited; a deletion stamped before this process saw the
exit (the kernel deletes a cooperative tap while its holder exits) counts as
0 ms.

${reapSection(r)}

${tgt(5)}
` : ''}`;
}
