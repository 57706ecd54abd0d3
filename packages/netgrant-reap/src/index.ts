// netgrant-reap: the lease reaper for deployments with no resident process
// (s6-ipcserver, ucspi-unix, systemd inetd-style). It deletes the stale
// leases of the network namespace it runs in as soon as the kernel reports
// a change (rtnetlink), and sweeps at an interval for what the kernel does
// not report. With -o it sweeps once and execs the rest of its command line.
import { UsageError, dumpLinks, optFlag, optString, parseUint, say, withNetlink, type Program } from '@netgrant/core';
import { currentNetnsTrusted, cull, cullTables, reapPhys, reapVlans, startReaper, type Lease, type LeaseTable } from '@netgrant/lease';
import { writeSync } from 'node:fs';

const NAME = 'netgrant-reap';
/** How long -o waits for the lease lock (the unused VLAN sub-interfaces are deleted under it). */
const LOCK_WAIT_MS = 10000;

function describe(lease: Lease, reason: string): string {
  return `deleted ${lease.link.name} (${lease.record.kind} by ${lease.record.by} for uid ${lease.record.uid}): ${reason}`;
}

export const program: Program = {
  name: NAME,
  usage: '[-1] [-v] [-i SWEEP_MS] | -o [-v] [prog...]',
  options: [
    { name: 'ready', short: '1' },
    { name: 'verbose', short: 'v' },
    { name: 'interval', short: 'i', value: true },
    { name: 'once', short: 'o' },
  ],
  run(chain, opts) {
    const verbose = optFlag(opts, 'verbose');
    const onReap = verbose ? (lease: Lease, reason: string) => say(NAME, 'info', describe(lease, reason)) : undefined;
    const warn = (m: string) => say(NAME, 'warning', m);
    const onReapTable = verbose ? (t: LeaseTable) => say(NAME, 'info', `deleted table inet ${t.name}: its lease is gone`) : undefined;
    if (!currentNetnsTrusted()) throw new UsageError('this network namespace is owned by a user namespace of its own: its records are forgeable, so there is nothing a reaper may trust here');
    if (optFlag(opts, 'once')) {
      if (optFlag(opts, 'ready') || optString(opts, 'interval') !== undefined) throw new UsageError('-o excludes -1 and -i');
      withNetlink((nl) => {
        cull(nl, onReap);
        cullTables(() => dumpLinks(nl), onReapTable);
        const vlans = reapVlans(nl, LOCK_WAIT_MS);
        if (verbose && vlans) say(NAME, 'info', `deleted ${vlans} unused VLAN sub-interface${vlans === 1 ? '' : 's'}`);
        const nics = reapPhys(nl, LOCK_WAIT_MS, warn);
        if (verbose && nics) say(NAME, 'info', `restored ${nics} leased NIC${nics === 1 ? '' : 's'} that came back`);
      });
      return; // the chain runtime execs the rest, or exits 0
    }
    if (chain.rest.length) throw new UsageError('a reaper that runs for ever takes no program (use -o to sweep once and go on)');
    const sweepMs = parseUint(optString(opts, 'interval') ?? '1000', '-i', 10, 3600000);
    startReaper({ sweepMs, onReap, onReapTable, onWarning: warn, onError: (e) => say(NAME, 'warning', e instanceof Error ? e.message : String(e)) });
    if (optFlag(opts, 'ready')) {
      try {
        writeSync(1, '\n');
      } catch {
        say(NAME, 'warning', 'could not write the readiness notification on fd 1');
      }
    }
    return new Promise<never>(() => undefined);
  },
};
