// Row 2, tap lease latency: connect to fd in hand, one lease after another,
// a tap with a vnet header on a bridge each time, p50 and p99:
// - netgrant under s6-ipcserver (a Node start per lease; with and without
//   NODE_EXTRA_CA_CERTS),
// - netgrant-serve, the resident server (no process start per lease),
// - Debian's qemu-bridge-helper driven the way QEMU drives it,
// - `ip tuntap add` + `ip link del` (two C process starts),
// - the raw kernel cost: the same calls in a loop in one process.
// Every lease is checked: a tap, on the bridge (tools/bench/lease-client.py).
import { build } from 'esbuild';
import { join } from 'node:path';
import { bundleOptions, copyNative } from '../build/build.mjs';
import { CA, PYTHON, SEA_PATH, benchDir, bin, knobs, percentile, mean, runJson, startService } from './lib.mjs';

export const CLIENT = join(benchDir, 'lease-client.py');
const HELPER = '/usr/lib/qemu/qemu-bridge-helper';
const WARMUP = 10;

/** The lease chain both servers run: who may ask, a tap on the bridge owned by the peer, the fd back. */
export const leaseChain = (bridge) => ['peer-check', '-u', '0', 'mktap', '-b', bridge, '--vnet-hdr', '--owner-from-peer', 'fd-send', '-s', '1', '-d', '3'];

/**
 * Start the lease service of `kind` ('s6' or 'resident') on sock. With
 * `onGcTrace`, the resident server runs as `node --trace-gc netgrant-serve`
 * and its trace goes to that callback.
 */
export function startLeaseService(kind, sock, bridge, env = {}, onGcTrace = undefined) {
  const chain = leaseChain(bridge);
  const serve = onGcTrace ? [process.execPath, '--trace-gc', join(bin, 'netgrant-serve')] : ['netgrant-serve'];
  const argv = kind === 's6' ? ['s6-ipcserver', '-c', '64', sock, ...chain] : [...serve, '-c', '64', sock, ...chain];
  return startService(argv, sock, env, onGcTrace ? { onStdout: onGcTrace } : {});
}

function summary(name, r, extra = {}) {
  if (r.checked !== r.leases || r.ms.length !== r.leases) throw new Error(`${name}: ${r.checked} of ${r.leases} leases checked`);
  return { name, n: r.ms.length, checked: r.checked, min: Math.min(...r.ms), p50: percentile(r.ms, 50), p99: percentile(r.ms, 99), mean: mean(r.ms), ...extra };
}

export const client = (args, bridge) => runJson([PYTHON, CLIENT, ...args], { env: bridge ? { BENCH_BRIDGE: bridge } : {} });

async function serviceLatency(kind, dir, bridge, n, env, drop = []) {
  const sock = join(dir, `lease-${kind}.sock`);
  const s = await startLeaseService(kind, sock, bridge, env);
  try {
    await client(['service', sock, String(WARMUP), ...drop], bridge);
    return await client(['service', sock, String(n), ...drop], bridge);
  } catch (e) {
    throw new Error(`${e.message}\nserver said: ${s.stderr()}`);
  } finally {
    await s.stop();
  }
}

/** Bundle raw-tap.ts (with koffi's native module beside it) into dir. */
async function rawTapBundle(dir) {
  const out = join(dir, 'raw-tap', 'raw-tap.cjs');
  await build({ ...bundleOptions(), entryPoints: [join(benchDir, 'raw-tap.ts')], outfile: out });
  copyNative(join(dir, 'raw-tap'));
  return out;
}

/** All latency rows; `bridge` exists, /etc/qemu/bridge.conf allows it (run.mjs sets both up). */
export async function measureLeases(dir, bridge, n = knobs.leases) {
  const rows = [];
  const s6 = await serviceLatency('s6', dir, bridge, n, {});
  const s6ca = await serviceLatency('s6', dir, bridge, n, { NODE_EXTRA_CA_CERTS: CA });
  rows.push(summary('netgrant under s6-ipcserver', s6, { ca: summary('', s6ca) }));
  rows.push(summary('netgrant-serve (resident)', await serviceLatency('resident', dir, bridge, n, {})));
  rows.push(summary('netgrant-serve, client drops the tap at once', await serviceLatency('resident', dir, bridge, n, {}, ['drop'])));
  await client(['helper', HELPER, bridge, String(WARMUP)], bridge);
  rows.push(summary("Debian's qemu-bridge-helper (QEMU's way)", await client(['helper', HELPER, bridge, String(n)], bridge)));
  rows.push(summary('ip tuntap add + ip link del', await client(['iptuntap', String(n)], null)));
  const raw = await rawTapBundle(dir);
  await runJson([process.execPath, raw, bridge, String(WARMUP)]);
  rows.push(summary('raw kernel cost (one process, no start)', await runJson([process.execPath, raw, bridge, String(n)])));
  const sea = await serviceLatency('s6', dir, bridge, n, { PATH: SEA_PATH });
  const seaCa = await serviceLatency('s6', dir, bridge, n, { PATH: SEA_PATH, NODE_EXTRA_CA_CERTS: CA });
  rows.push(summary('the single executable under s6-ipcserver', sea, { ca: summary('', seaCa) }));
  return rows;
}
