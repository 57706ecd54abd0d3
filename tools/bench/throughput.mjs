// Row 3, throughput: leases per second with 32 clients at once, under
// s6-ipcserver (with and without NODE_EXTRA_CA_CERTS) and from the resident
// server, whose RSS and open fds are sampled after every 1,000 leases of
// 10,000, and which runs under `node --trace-gc` so that its live JS heap
// after every full GC is known (no growth expected; judged as the soak
// judges it, tools/soak/checks.mjs). Every lease is checked like in row 2.
import { join } from 'node:path';
import { CA, knobs } from './lib.mjs';
import { client, startLeaseService } from './lease.mjs';
import { fullGcHeaps } from '../soak/server.mjs';

const CLIENTS = 32;

async function concurrent(kind, dir, bridge, n, env, sampleServer) {
  const sock = join(dir, `tput-${kind}.sock`);
  // Each full GC's live heap, with the time its trace line arrived (seconds, as the client's samples).
  const gcs = [];
  let trace = '';
  const onGcTrace = (d) => {
    trace += d;
    const lines = trace.split('\n');
    trace = lines.pop();
    for (const mb of fullGcHeaps(lines.join('\n'))) gcs.push({ t: Date.now() / 1000, mb });
  };
  const s = await startLeaseService(kind, sock, bridge, env, sampleServer ? onGcTrace : undefined);
  try {
    const r = await client(['concurrent', sock, String(n), String(CLIENTS), ...(sampleServer ? [String(s.pid)] : [])], bridge);
    if (r.errors > 0) throw new Error(`${kind}: ${r.errors} of ${n} leases failed: ${r.first_errors.join('; ')}\nserver said: ${s.stderr()}`);
    // How many full GCs each sample came after.
    for (const sample of r.samples ?? []) sample.full_gcs = gcs.filter((g) => g.t <= sample.t).length;
    return { ...r, fullGcHeapMb: gcs.map((g) => g.mb) };
  } finally {
    await s.stop();
  }
}

export async function measureThroughput(dir, bridge, residentLeases = knobs.throughputLeases) {
  // s6-ipcserver pays a Node start per lease: fewer leases give the same rate.
  const s6Leases = Math.max(CLIENTS, Math.min(residentLeases, 128));
  const s6 = await concurrent('s6', dir, bridge, s6Leases, {}, false);
  const s6ca = await concurrent('s6', dir, bridge, s6Leases, { NODE_EXTRA_CA_CERTS: CA }, false);
  const resident = await concurrent('resident', dir, bridge, residentLeases, {}, true);
  return {
    clients: CLIENTS,
    rows: [
      { name: 'netgrant under s6-ipcserver', leases: s6.leases, perSecond: s6.per_second, ca: { leases: s6ca.leases, perSecond: s6ca.per_second } },
      { name: 'netgrant-serve (resident)', leases: resident.leases, perSecond: resident.per_second },
    ],
    samples: resident.samples,
    fullGcHeapMb: resident.fullGcHeapMb,
  };
}
