// Row 4, the datapath: iperf3 (TCP, a few seconds) from a launched network
// namespace to an iperf3 server on its host side (the benchmark's own
// namespace), at MTU 1500 and 65520, for:
// - a macvlan from mkmacvlan (the host side is a macvlan on the same parent),
// - a tap bridged by netgrant: mktap puts one tap on a bridge and creates a
//   second one inside the launched namespace; tap-pump.c moves frames
//   between their fds, standing in for a VM's network backend; and the
//   same with the bridge-side tap pinned (per-lease anti-spoofing filter),
// - a macvtap from mkmacvtap, its queue fd pumped by tap-pump.c to a tap in
//   a launched namespace (the VM's place), the host side a macvlan on the
//   macvtap's parent,
// - a plain veth pair,
// - slirp4netns and pasta (the host side is the loopback they forward to).
import { openSync, closeSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { background, benchDir, knobs, run, sh, sleep } from './lib.mjs';
import { bundleOptions, copyNative } from '../build/build.mjs';

export const MTUS = [1500, 65520];
let port = 5300;

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/**
 * One iperf3 run against a fresh one-off server on the host side: the
 * received rate in Gbit/s and where the CPU went (iperf3's own sender and
 * receiver figures, and `extraPid`'s CPU share, e.g. the tap pump's).
 */
async function iperf(argvPrefix, target, extraPid) {
  const p = String(port++);
  const server = background(['iperf3', '-s', '-1', '-p', p]);
  try {
    await waitFor(() => sh(`ss -Hltn 'sport = :${p}' | grep -q LISTEN`), server);
    const cpu0 = extraPid ? cpuSeconds(extraPid) : 0;
    const out = run([...argvPrefix, 'timeout', String(knobs.iperfSeconds + 20), 'iperf3', '-c', target, '-p', p, '-t', String(knobs.iperfSeconds), '--connect-timeout', '3000', '-J'], { timeout: (knobs.iperfSeconds + 30) * 1000 });
    const r = JSON.parse(out);
    if (r.error) throw new Error(`iperf3: ${r.error}`);
    const u = r.end.cpu_utilization_percent;
    return {
      gbps: r.end.sum_received.bits_per_second / 1e9,
      cpu: { sender: u.host_total, receiver: u.remote_total, ...(extraPid ? { pump: ((cpuSeconds(extraPid) - cpu0) / knobs.iperfSeconds) * 100 } : {}) },
    };
  } finally {
    await server.stop(true);
  }
}

const inNs = (ns) => ['ip', 'netns', 'exec', ns];

const setups = {
  async veth(mtu) {
    sh(`ip netns add dpv && ip link add dpv0 mtu ${mtu} type veth peer name dpv1 mtu ${mtu} netns dpv && ip addr add 10.76.0.1/24 dev dpv0 && ip link set dpv0 up && ip -n dpv addr add 10.76.0.2/24 dev dpv1 && ip -n dpv link set dpv1 up && ip -n dpv link set lo up`);
    return { measure: () => iperf(inNs('dpv'), '10.76.0.1'), cleanup: () => sh('ip link del dpv0; ip netns del dpv') };
  },

  async 'macvlan (mkmacvlan)'(mtu, dir) {
    // The parent is a veth end (no dummy module here); the host side is a
    // macvlan on it in bridge mode, as a host reaches its own macvlans.
    sh(`ip link add dpm0 mtu ${mtu} type veth peer name dpm1 mtu ${mtu} && ip link set dpm0 up && ip link set dpm1 up && ip link add link dpm0 name dpmh type macvlan mode bridge && ip addr add 10.77.0.1/24 dev dpmh && ip link set dpmh up`);
    const conf = join(dir, 'macvlan.conf');
    writeFileSync(conf, 'mode bridge\n10.77.0.0/24 parent dpm0 gateway 10.77.0.1\n');
    chmodSync(conf, 0o644);
    return { measure: () => iperf(['mkmacvlan', '-c', conf], '10.77.0.1'), cleanup: () => sh('ip link del dpmh; ip link del dpm0') };
  },

  'tap bridged by netgrant': (mtu, dir) => tapSetup(mtu, dir, false),

  async 'macvtap (mkmacvtap)'(mtu, dir) {
    sh(`ip link add dpq0 mtu ${mtu} type veth peer name dpq1 mtu ${mtu} && ip link set dpq0 up && ip link set dpq1 up && ip link add link dpq0 name dpqh type macvlan mode bridge && ip addr add 10.80.0.1/24 dev dpqh && ip link set dpqh up`);
    const pump = join(dir, 'tap-pump');
    run(['cc', '-O2', '-pthread', '-o', pump, join(benchDir, 'tap-pump.c')]);
    sh('ip netns add dpq && ip -n dpq link set lo up');
    const nsFd = openSync('/run/netns/dpq', 'r');
    const chain = background(
      ['mkmacvtap', '-l', 'dpq0', '-n', 'dpqv', '--vnet-hdr', '-d', '3',
        'mktap', '-n', 'dpq2', '--vnet-hdr', '-m', String(mtu), '--any-netns', '-N', '5', '-d', '4', pump, '3', '4'],
      { stdio: ['ignore', 'ignore', 'pipe', 'ignore', 'ignore', nsFd] },
    );
    closeSync(nsFd);
    const cleanup = async () => {
      await chain.stop(true);
      sh('ip link del dpqv; ip link del dpqh; ip link del dpq0; ip netns del dpq');
    };
    try {
      await waitFor(() => {
        if (readFileSync(`/proc/${chain.pid}/comm`, 'utf8').trim() !== 'tap-pump') throw new Error('the macvtap chain did not reach tap-pump');
      }, chain);
      // The guest's side uses the macvtap's MAC, as a guest must.
      const mac = JSON.parse(run(['ip', '-j', 'link', 'show', 'dpqv']))[0].address;
      sh(`ip -n dpq link set dpq2 down && ip -n dpq link set dpq2 address ${mac} && ip -n dpq link set dpq2 up && ip -n dpq addr add 10.80.0.2/24 dev dpq2`);
    } catch (e) {
      await cleanup();
      throw e;
    }
    return { measure: () => iperf(inNs('dpq'), '10.80.0.1', chain.pid), cleanup };
  },

  // The same chain and pump, the bridge-side tap pinned (installPin, as a
  // pinned lease is): every frame the pump writes passes the filter. Each
  // measurement pairs an unpinned and a pinned run (tapSetup).
  'tap bridged by netgrant, pinned': (mtu, dir) => tapSetup(mtu, dir, true),

  async slirp4netns(mtu) {
    sh('ip netns add dps');
    const slirp = background(['slirp4netns', '--configure', '--mtu', String(mtu), '--netns-type=path', '/run/netns/dps', 'tap0']);
    await waitFor(() => sh('ip -n dps -4 addr show tap0 | grep -q 10.0.2.100'), slirp);
    return { measure: () => iperf(inNs('dps'), '10.0.2.2'), cleanup: async () => (await slirp.stop(true), sh('ip netns del dps')) };
  },

  async pasta(mtu) {
    // pasta copies a host interface with a default route (here a veth with
    // a route to nowhere) and maps the gateway address to the host's loopback.
    sh('ip netns add dpp && ip link add dpu0 type veth peer name dpu1 && ip addr add 10.79.0.1/24 dev dpu0 && ip link set dpu0 up && ip link set dpu1 up && ip route add default via 10.79.0.254 dev dpu0');
    const pasta = background(['pasta', '-f', '--runas', '0', '--config-net', '-4', '-m', String(mtu), '--netns', '/run/netns/dpp']);
    await waitFor(() => sh('ip -n dpp -4 addr show | grep -q 10.79.0.1'), pasta);
    return { measure: () => iperf(inNs('dpp'), '10.79.0.254'), cleanup: async () => (await pasta.stop(true), sh('ip route del default; ip link del dpu0; ip netns del dpp')) };
  },
};

/** A tap bridged by netgrant, pumped to a tap in a launched namespace; pinned if asked. */
async function tapSetup(mtu, dir, pin) {
  const pump = join(dir, 'tap-pump');
  run(['cc', '-O2', '-pthread', '-o', pump, join(benchDir, 'tap-pump.c')]);
  sh(`ip netns add dpt && ip -n dpt link set lo up && ip link add brd0 type bridge && ip addr add 10.78.0.1/24 dev brd0 && ip link set brd0 up`);
  const nsFd = openSync('/run/netns/dpt', 'r');
  const chain = background(
    ['mktap', '-n', 'dpt0', '-b', 'brd0', '--vnet-hdr', '-m', String(mtu), '-d', '3',
      'mktap', '-n', 'dpt1', '--vnet-hdr', '-m', String(mtu), '--any-netns', '-N', '5', '-d', '4', pump, '3', '4'],
    { stdio: ['ignore', 'ignore', 'pipe', 'ignore', 'ignore', nsFd] },
  );
  closeSync(nsFd);
  try {
    // Both taps are made and up once the chain has exec'd into the pump.
    await waitFor(() => {
      if (readFileSync(`/proc/${chain.pid}/comm`, 'utf8').trim() !== 'tap-pump') throw new Error('the tap chain did not reach tap-pump');
    }, chain);
    sh(`ip link set brd0 mtu ${mtu} && ip -n dpt addr add 10.78.0.2/24 dev dpt1`);
  } catch (e) {
    await chain.stop(true);
    sh('ip link del brd0; ip netns del dpt');
    throw e;
  }
  const once = () => iperf(inNs('dpt'), '10.78.0.1', chain.pid);
  // Pinned: each measurement is a pair on the same chain and pump, one run
  // unpinned and one pinned, in alternating order (so drift in the
  // machine's load falls on both), the pin installed and removed between
  // them; the result is the pinned run plus the pair's ratio.
  let order = 0;
  const paired = async () => {
    const guestMac = JSON.parse(run(['ip', '-n', 'dpt', '-j', 'link', 'show', 'dpt1']))[0].address;
    const helper = await pinTapBundle(dir);
    const pinned = async () => {
      const p = JSON.parse(run([process.execPath, helper, 'pin', 'dpt0', guestMac, '10.78.0.2']));
      if (p.filters.length !== 1 || p.filters[0].bpf?.name !== 'netgrant-pin') throw new Error(`dpt0 is not pinned: ${JSON.stringify(p)}`);
      try {
        return await once();
      } finally {
        run([process.execPath, helper, 'unpin', 'dpt0']);
      }
    };
    const first = order++ % 2 === 0;
    const a = first ? await once() : await pinned();
    const b = first ? await pinned() : await once();
    const [plain, pin] = first ? [a, b] : [b, a];
    // Beside the throughput: the program's own time per frame, and the
    // host path's CPU time per frame written into a bridged tap without and
    // with the pin (load-independent where iperf3's rate is not).
    const { ns } = JSON.parse(run([process.execPath, helper, 'cost']));
    const pathCost = JSON.parse(run([process.execPath, helper, 'path-cost']));
    return { ...pin, ratio: pin.gbps / plain.gbps, unpinned: plain.gbps, progNs: ns, pathCost: { unpinnedNs: pathCost.unpinnedNs, pinnedNs: pathCost.pinnedNs, ratio: pathCost.ratio } };
  };
  return {
    measure: pin ? paired : once,
    cleanup: async () => {
      await chain.stop(true);
      sh('ip link del brd0; ip netns del dpt');
    },
  };
}

/** Bundle pin-tap.ts (with koffi's native module beside it) into dir, once. */
let pinTap;
async function pinTapBundle(dir) {
  if (pinTap) return pinTap;
  const out = join(dir, 'pin-tap', 'pin-tap.cjs');
  await build({ ...bundleOptions(), entryPoints: [join(benchDir, 'pin-tap.ts')], outfile: out });
  copyNative(join(dir, 'pin-tap'));
  return (pinTap = out);
}

async function waitFor(check, proc) {
  for (let i = 0; ; i++) {
    if (proc.exited()) throw new Error(`exited: ${proc.stderr()}`);
    try {
      return check();
    } catch (e) {
      if (i > 200) throw e; // 10 s: Node starts are slow on a loaded machine
      await sleep(50);
    }
  }
}

/**
 * Every setup at every MTU: { name, gbps: { 1500: x, 65520: y }, cpu: {...} }
 * or an error text per cell. `pick`: the first words of the setups to run
 * (BENCH_DATAPATH=veth,macvlan,macvtap,tap,slirp4netns,pasta), default all.
 */
export async function measureDatapath(dir, pick = process.env.BENCH_DATAPATH?.split(',')) {
  const rows = [];
  for (const [name, setup] of Object.entries(setups)) {
    if (pick && !pick.includes(name.split(' ')[0])) continue;
    const row = { name, gbps: {}, cpu: {}, errors: {} };
    for (const mtu of MTUS) {
      let s;
      try {
        s = await setup(mtu, dir);
        const runs = [];
        for (let i = 0; i < knobs.iperfRepeats; i++) runs.push(await s.measure());
        const r = runs.sort((a, b) => a.gbps - b.gbps)[Math.floor(runs.length / 2)];
        row.gbps[mtu] = r.gbps;
        row.cpu[mtu] = r.cpu;
        // Paired runs (the pinned tap): the median of the pairs' ratios.
        if (r.ratio !== undefined) {
          (row.ratio ??= {})[mtu] = runs.map((x) => x.ratio).sort((a, b) => a - b)[Math.floor(runs.length / 2)];
          (row.pairs ??= {})[mtu] = runs.map((x) => ({ pinned: x.gbps, unpinned: x.unpinned }));
          row.progNs = r.progNs;
          (row.pathCost ??= {})[mtu] = r.pathCost;
        }
        row.runs = runs.length;
      } catch (e) {
        row.errors[mtu] = e.message.split('\n')[0];
      } finally {
        try {
          await s?.cleanup();
        } catch {
          /* the namespace goes at the end of the run anyway */
        }
      }
      console.error(`datapath: ${name} mtu ${mtu}: ${row.gbps[mtu]?.toFixed(2) ?? row.errors[mtu]}`);
    }
    rows.push(row);
  }
  return rows;
}
