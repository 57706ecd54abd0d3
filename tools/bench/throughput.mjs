// Row 3, throughput: leases per second with 32 clients at once, under
// s6-ipcserver (with and without NODE_EXTRA_CA_CERTS) and from the resident
// server, whose RSS and open fds are sampled after every 1,000 leases of
// 10,000 (no growth expected). Every lease is checked like in row 2.
import { join } from 'node:path';
import { CA, knobs } from './lib.mjs';
import { client, startLeaseService } from './lease.mjs';

const CLIENTS = 32;

async function concurrent(kind, dir, bridge, n, env, sampleServer) {
  const sock = join(dir, `tput-${kind}.sock`);
  const s = await startLeaseService(kind, sock, bridge, env);
  try {
    const r = await client(['concurrent', sock, String(n), String(CLIENTS), ...(sampleServer ? [String(s.pid)] : [])], bridge);
    if (r.errors > 0) throw new Error(`${kind}: ${r.errors} of ${n} leases failed: ${r.first_errors.join('; ')}\nserver said: ${s.stderr()}`);
    return r;
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
  };
}
