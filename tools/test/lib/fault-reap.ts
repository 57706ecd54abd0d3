// Fault-injection target (tools/test/lib/faults.ts) for the lease reaper:
// `netgrant-reap -o` sweeps a namespace holding two stale leases (persistent
// taps with a lease record), a live lease (a tap held by a process) and a
// tap netgrant did not make. Whatever call fails or is killed, the live
// lease and the foreign tap survive, and a reaper run again deletes exactly
// the stale leases (it reconciles from the kernel alone).
import { run, sh } from './harness.js';
import type { Target, Outcome } from './faults.js';
import { tunLinks } from './kernel-state.js';

const STALE = ['st0', 'st1'];
/** What must never be deleted. */
export const KEEP = ['live0', 'foreign0'];

function makeStale(): void {
  for (const n of STALE) {
    sh(`ip link del ${n} 2>/dev/null; ip tuntap add mode tap name ${n} user 65534 && ip link set ${n} alias "netgrant1 lease by=mktap uid=65534 owner=65534 group=- mac=$(cat /sys/class/net/${n}/address 2>/dev/null || ip -j link show ${n} | sed 's/.*"address":"\\([^"]*\\)".*/\\1/')"`);
  }
}

const names = () => tunLinks().map((l) => l.name).sort();

export function reapTarget(): Target {
  return {
    name: 'netgrant-reap -o',
    programs: ['netgrant-reap'],
    async run(strace): Promise<Outcome> {
      makeStale();
      const r = run([...strace, 'netgrant-reap', '-o', 'true']);
      return { status: r.status, signal: r.signal, stderr: r.stderr, stdout: r.stdout };
    },
    checkOk(o) {
      const left = names();
      if (STALE.some((n) => left.includes(n))) return `stale leases left after a successful sweep: ${left.join(' ')}; ${o.stderr}`;
      return null;
    },
    leftovers() {
      const before = names();
      const lost = KEEP.filter((n) => !before.includes(n));
      if (lost.length) return `deleted what it must not: ${lost.join(', ')}`;
      // Run again: it reconciles from the kernel alone.
      const again = run(['netgrant-reap', '-o']);
      const after = names();
      if (again.status !== 0) return `the next sweep failed: ${again.stderr}`;
      if (STALE.some((n) => after.includes(n))) return `the next sweep left stale leases: ${after.join(' ')}`;
      if (KEEP.some((n) => !after.includes(n))) return `the next sweep deleted what it must not: ${after.join(' ')}`;
      return null;
    },
  };
}
