#!/usr/bin/env node
// npm run soak: 10,000 tap leases through the tap service, under
// s6-ipcserver and under the resident netgrant-serve, a random tenth of
// the clients SIGKILLed mid-lease; checks that nothing is left and the
// server stays flat, writes docs/soak.md, ends with `N passed, N failed`.
//
//   node tools/soak/run.mjs [--summary FILE]
//
// Then 2,000 mkmacvlan launches (the registry under kills and hiding).
// Knobs (environment): SOAK_LEASES (10000), SOAK_S6_LEASES (SOAK_LEASES),
// SOAK_LAUNCHES (2000), SOAK_CONCURRENCY (12), SOAK_SERVERS
// (resident,s6,launcher), SOAK_SEED (random),
// NETGRANT_NODE (the Node binary the toolkit runs under). docs/soak.md is
// written only by a run with the full counts; other runs write .build/soak.md.
//
// This process re-runs itself inside a fresh network and mount namespace
// (with that namespace's sysfs), where inside.mjs does the work: nothing
// reaches the host's network namespace.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { options, fatal } from './cli.mjs';

if (process.getuid() !== 0) fatal('must run as root (it runs a root tap service in a namespace of its own)');
const { seed } = options();
if (process.env.NETGRANT_SOAK_INNER) {
  await import('./inside.mjs');
} else {
  // Its own sysfs and its own /run/netgrant (the lease lock) as well.
  const script = 'mount --make-rprivate / && mount -t sysfs netgrant-soak /sys && mkdir -p /run/netgrant && mount -t tmpfs -o mode=0755 netgrant-soak /run/netgrant && ip link set lo up && exec "$@"';
  const inner = spawn('unshare', ['--net', '--mount', '--', 'sh', '-c', script, 'sh', process.execPath, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, NETGRANT_SOAK_INNER: '1', SOAK_SEED: String(seed) },
  });
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => inner.kill(sig));
  inner.on('close', (code) => process.exit(code ?? 1));
}
