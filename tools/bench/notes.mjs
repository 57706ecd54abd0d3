// Where the time goes, per row of docs/perf.md. The numbers in the prose
// come from profiles taken on this machine (how to take them again is said
// with each); the numbers in the sentences that compare rows come from the
// run itself.
import { HEAP_BAND_MB, RSS_BAND_KB, WARM_LEASES } from '../soak/checks.mjs';
const f1 = (x) => x.toFixed(1);
const f2 = (x) => x.toFixed(2);

function chain(r) {
  const by = Object.fromEntries(r.chain.map((c) => [c.key, c]));
  const gap = by.inproc.without.mean - by.node.without.mean;
  const gapMin = by.inproc.without.min - by.node.without.min;
  return `Where the time goes. \`node -e 0\` is V8 and Node's bootstrap, ~20 ms
here before any script runs (+ ~35 ms parsing the CA bundle when
NODE_EXTRA_CA_CERTS is set, which every Node start pays, ours included). The
C chain pays ~0.5 ms per exec. Exec'ing every netgrant link pays the Node
start five times; in-process chaining pays it once and costs
${f1(gap)} ms more than \`node -e 0\` in this run (means; ${f1(gapMin)} ms between the
fastest runs, the better estimate on a loaded machine).

That remainder, from a CPU profile (\`node --cpu-prof\`, 50 µs sampling) and
performance.now() marks at every module boundary of the bundle, five
\`peer-check -E -a\` links in one process (medians of 6 runs; the first two
rows re-measured with the code cache in place, machine idle):

| part | ms |
|---|---|
| reading the entry point, the loader and the 140 KB bundle and its 80 KB code cache | ~1.1 |
| compiling the bundle: with the code cache (without it: 3.1–4.8) | ~1.0 |
| koffi: loading its 1.1 MB native module and its JS | ~2.5 |
| the start-fd snapshot (readdir + readlink over Node's ~16 fds) | ~0.85 |
| the other module bodies of the bundle (errno names, libc declarations, option tables) | ~1.6 |
| the five links: option parsing (minimist) ~0.3 each, peer-check's passwd/group lookups ~0.15 each, argv from /proc/self/cmdline ~0.5 once, resolving each next link through PATH | ~3.7 |
| exec of /bin/true with the hygiene (close-on-exec, signals, stdio flags) | ~0.5–1 |

Done earlier: node:child_process, node:crypto and node:net are loaded
where a link uses them (they cost ~2.5, ~2.5 and ~2 ms at load and almost
no link needs them), the errno table is built on first use, the start-fd
snapshot reads a pipe's flags with two fcntl calls instead of parsing
/proc/self/fdinfo for every fd, and the resolver uses realpath(3) (the JS
realpathSync costs ~10× more per call, and every link resolves the next).
Requiring the bundle went from ~15 ms to ~8.5 ms; the chain from 1.85 × to
the ratio above.

Then the code cache: every entry point loads the bundle through
\`dist/load.cjs\`, which compiles it with V8's code cache made at build
time from the bundle's module body (\`vm.Script\` \`cachedData\`; tied to
the bundle by a build id on both, since V8 checks only the source's
length). Loading the bundle went from ~8.0 to ~5.4 ms (fastest of 15
starts each, this machine idle). Node 22's module compile cache would do
the same, but its default directory is world-writable /tmp, which a
privileged program must not load code from.

What is left is fixed cost: Node's own start, koffi's native module (the
final exec needs it: Node 20 has no execve), the start-fd snapshot, and
running the links themselves; the parts above add up to ~11 ms, and the
exec itself tears down Node's address space (a few hundred mappings, the
V8 heap reservation) where the C chain's execs tear down almost nothing.
Minifying whitespace saves only ~0.5 ms. The 1.25 × target would leave
~5 ms over \`node -e 0\` for loading the toolkit and running five links:
less than koffi and the bundle's module bodies take before any link runs.

### A startup snapshot for the single executable: tried, not adopted (issue 18)

Tried: the SEA config's \`useSnapshot: true\` (useCodeCache is then
ignored), with the bundle wrapped as one function that the snapshot's
\`v8.startupSnapshot.setDeserializeMainFunction\` calls at run time. koffi
(a native addon) cannot be in a snapshot, and @netgrant/core loads it as
its modules load, so nothing of the toolkit can run at build time: the
snapshot holds Node's bootstrap and an uncompiled function. The file grew
from 151.0 MB to 158.1 MB; every program worked.

Measured 2026-12-02 14:35–14:45 with the machine shared (load average
9–13 on 2 cores: wall times were useless, σ 50–100 % of the mean), five
\`peer-check -E -a\` links then /bin/true as in the table above; hyperfine
-N in one run (two runs: 30 and 40 runs after 3 warm-ups); the figure
that survives such load is the CPU time per start (user + system, ms):

| chain | code cache (the build) | snapshot | code cache, +CA | snapshot, +CA |
|---|---|---|---|---|
| \`node -e 0\` (for scale) | 33.6 / 31.3 / 33.8 | — | 37.8 / 30.0 / 35.3 | — |
| single executable, 5 links, in-process | 61.5 / 57.7 / 61.9 | 56.6 / 55.2 / 71.0 | 62.9 / 51.8 / 64.4 | 56.3 / 61.4 / 66.8 |
| single executable, every link exec'd | 255.0 / 274.3 | 268 / 229.2 | 279 / 231.6 | 255 / 234.2 |

(the third figure: a third run, 60 runs after 5 warm-ups, in-process only.)

An interleaved A/B run (each variant once per round, 40 rounds) gave the
same picture: fastest in-process runs 39.5 ms (code cache) and 57.6 ms
(snapshot), medians 159 and 135 ms, all within the noise. No gain beyond
the noise of one run (±10 %), a bigger file, and a build that
wraps the bundle: the build keeps the code cache and no snapshot. A
snapshot could only help if module bodies ran at build time, which means
core not touching koffi until its first call (every libc declaration made
lazily): not simple, and the module bodies are ~1.6 ms of the chain (the
table above). NODE_EXTRA_CA_CERTS no longer costs ~35 ms per start under the Node
releases CI installs: \`node -e 0\` took 18.8 + 14.3 ms of CPU without it
and 18.0 + 11.4 with it under 26.12.1 (18.2 + 14.0 and 19.3 + 12.9 under
22.23.5; 40 runs each), and a missing file named by it is reported only
when a TLS context is first made (\`tls.createSecureContext()\`), not at
start: these releases read the extra certificates lazily. The ~35 ms in
the tables above and in the notes were measured earlier (under which
release was not recorded here; not re-checked).

To rerun on an idle machine: set \`useSnapshot: true\`,
\`useCodeCache: false\` in tools/build/sea.mjs's config and wrap
\`main.cjs\` as above.`;
}

function lease(r) {
  const [s6, resident, drop, qbh, ip, raw] = r.lease;
  return `Where the time goes. Under s6-ipcserver every lease is a Node start
plus the chain (row 1): ~${f1(s6.p50 / qbh.p50)} × qemu-bridge-helper, which is
a small C program. The resident server starts nothing: its p50 here is
${f2(resident.p50)} ms against ${f2(raw.p50)} ms for the raw kernel calls alone
and ${f2(qbh.p50)} ms for qemu-bridge-helper; the fastest leases, the ones that
waited least for a CPU, were ${f2(resident.min)}, ${f2(raw.min)} and ${f2(qbh.min)} ms.
A profile of netgrant-serve over 1,500 leases (\`--cpu-prof\` through the
inspector, 50 µs sampling) put the server's own work per lease at ~0.4 ms:
mktap's netlink set-master-and-up ~0.1 ms, its two link lookups ~0.05 ms,
TUNSETIFF ~0.02 ms, fd-send's sendmsg ~0.05 ms, accepting and parsing the
chain's options ~0.1 ms. An strace of a lease then showed each of the three
links resolved through PATH again for every connection (a statx, an access
and ten readlinks each); the server now resolves the chain once, when it
checks it at start (which also closes a hole: docs/security.md), and the
resident p50 went from 1.95 to about 1.7 ms on this idle machine. The rest
of the gap to the raw row (the kernel's own tap creation and bridge attach,
no socket) is the connection itself: connect, accept, SO_PEERCRED, the
SCM_RIGHTS message, and two cross-process wake-ups (client to server and
back), each tens to a hundred µs on this 2-vCPU VM. qemu-bridge-helper pays
a fork and exec of a small C program instead. Half of its p50 would leave
${f2(qbh.p50 / 2 - raw.p50)} ms over the raw kernel calls for the server's JavaScript, the
connection and both wake-ups${resident.p50 <= qbh.p50 / 2 ? '' : `: not reached (the resident row is ${f2(resident.p50 / qbh.p50)} of the
helper's)`}.

The client drops the tap at once (row "${drop.name}"): then the server's
close of its copy is the last one, and the kernel's device teardown
(unregister_netdevice, RCU grace periods) runs in the server's close, on
its main thread, after the fd is sent: p50 ${f2(drop.p50)} ms, like the
holding row, but a mean of ${f2(drop.mean)} and a p99 of ${f2(drop.p99)} ms, when the next
connection waits for a teardown. The benchmark's client holds each tap
until the server has finished with the connection, as QEMU holds a lease.
A server that closed its copies off the main thread (koffi's asynchronous
calls on libuv's thread pool) should bring the tails together; not tried
here. \`ip tuntap add\` + \`ip link del\` (${f2(ip.p50)} ms) is two
process starts of a C program with a netlink round trip each.`;
}

function throughput(r) {
  const [s6, resident] = r.throughput.rows;
  const s = r.throughput.samples.filter((x) => !x.settled);
  const mib = (x) => f1(x.rss_kb / 1024);
  const peak = s.reduce((a, b) => (b.rss_kb > a.rss_kb ? b : a));
  const last = s[s.length - 1];
  const tail = s.filter((x) => x.leases >= peak.leases);
  const heap = r.throughput.fullGcHeapMb ?? [];
  return `With ${r.throughput.clients} clients the resident server serves
${f1(resident.perSecond / s6.perSecond)} × the leases per second of s6-ipcserver,
which starts Node once per lease on ${r.cpus} CPUs. Open fds sampled mid-run
include the connections in flight (a connection and its tap while its chain
runs); after the clients are gone the count is back to where it started:
nothing leaks per connection in the fd table.

RSS rises in steps while V8 sizes its heap and malloc keeps freed arenas —
here the peak, ${mib(peak)} MiB, came at ${peak.leases} leases, and over the
${last.leases - peak.leases} leases after it RSS went to ${mib(last)} MiB
(${tail.map(mib).join(' → ')}). RSS cannot tell such a step from a slow
leak; the live heap after a full GC can. The server runs under
\`node --trace-gc\`, and the live heap after each of its ${heap.length} full
GCs was ${heap.map(f1).join(', ')} MB. Both are judged as the soak judges
them (docs/soak.md): from ${WARM_LEASES} leases on, the heap within
${HEAP_BAND_MB} MB (a leak of 110 bytes per lease over 9,000 leases would
leave it) and RSS within ${RSS_BAND_KB / 1024} MiB (3.5 kB per lease).

What the RSS steps are: V8's young generation. With 32 clients at once the
server allocates fast enough that V8 grows its semi-spaces to their
maximum (16 MiB each on this 64-bit Node). The same 10,000 leases with the
server run as \`node --max-semi-space-size=1 netgrant-serve ...\` (measured
twice, 2026-11-25): RSS 42 → 58 MiB over the first 1,000 leases, then
58–67 MiB to the end (61, 61, 61, 61, 64, 67, 63, 63, 63, 63 at each
further 1,000), the live heap 4.2–4.3 MB, and the same ~840 leases/s. A host that wants the
smaller footprint can run the server that way; the default is Node's.`;
}

function datapath(r) {
  const by = Object.fromEntries(r.datapath.map((d) => [d.name, d]));
  const tap = by['tap bridged by netgrant'];
  const cpu = (d, mtu) => (d.cpu[mtu] ? `sender ${f1(d.cpu[mtu].sender)}%, receiver ${f1(d.cpu[mtu].receiver)}%${d.cpu[mtu].pump !== undefined ? `, pump ${f1(d.cpu[mtu].pump)}%` : ''}` : 'n/a');
  return `Where the time goes (CPU shares from iperf3's own accounting and the
pump's /proc stat during the run):

${r.datapath.map((d) => `- ${d.name}: MTU 1500: ${cpu(d, 1500)}; MTU 65520: ${cpu(d, 65520)}`).join('\n')}

The macvlan from mkmacvlan is a kernel device like the veth: frames move
between namespaces inside the kernel, and netgrant is not on the path at
all once the namespace is launched. The bridged tap is the path a VM's
traffic takes: every frame is read from one tap fd and written to another
by a userspace program (here tap-pump.c, with offloads on so a 64 KB
segment crosses as one read and one write). Two system calls and two
copies per frame, on top of the bridge, is what keeps it below the veth
(${tap?.cpu[1500]?.pump !== undefined ? `the pump used ${f1(tap.cpu[1500].pump)}% of a CPU at MTU 1500` : 'see the pump share above'}); QEMU's vhost-net moves the
same frames in the kernel and is the way to close that gap for VMs — the
tap netgrant hands out is the same either way. slirp4netns and pasta
terminate TCP in userspace and open a new socket on the host side: every
byte crosses two more copies and the TCP stack twice.${stalled(by.pasta) ? `

pasta's number is a floor, not its speed: sender and receiver were nearly
idle (above), so the transfer was stalling, not CPU-bound. Not explained
here: Debian 12's passt (2023-03-09) run as root (\`--runas 0\`) into a named
namespace, copying a veth with nothing beyond it as its template.` : ''}`;
}

/** Both iperf3 ends under 5% CPU at every MTU: the transfer waited, it did not work. */
const stalled = (d) => d && Object.values(d.cpu).length > 0 && Object.values(d.cpu).every((c) => c.sender + c.receiver < 5);

export function notes(r) {
  return {
    chain: r.chain ? chain(r) : '',
    lease: r.lease ? lease(r) : '',
    throughput: r.throughput ? throughput(r) : '',
    datapath: r.datapath ? datapath(r) : '',
  };
}
