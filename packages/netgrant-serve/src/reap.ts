// The resident server ends stale leases itself: the chains it runs create
// them in its own namespace, so it runs the lease reaper there, on its event
// loop (no namespace change). As root only, and only in a namespace whose
// records count (lease's trust rule); --no-reap leaves it to a netgrant-reap
// service.
import { say } from '@netgrant/core';
import { currentNetnsTrusted, startReaper } from '@netgrant/lease';

const SWEEP_MS = 1000;

export function startServerReaper(verbose: boolean): void {
  if (process.geteuid?.() !== 0 || !currentNetnsTrusted()) return;
  startReaper({
    sweepMs: SWEEP_MS,
    onReap: verbose ? (lease, reason) => say('netgrant-serve', 'info', `reaped ${lease.link.name} (lease by ${lease.record.by} for uid ${lease.record.uid}): ${reason}`) : undefined,
    onError: (e) => say('netgrant-serve', 'warning', `reaper: ${e instanceof Error ? e.message : String(e)}`),
  });
}
