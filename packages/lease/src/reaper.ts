// The reaper: ends the stale leases of this thread's network namespace as
// soon as the kernel says something changed, plus a sweep at an interval
// for what it does not say (a queue detached with TUNSETQUEUE sends no
// notification, nor does TUNSETPERSIST on a tap that is down) and after the
// kernel dropped notifications (ENOBUFS). Lease tables (tables.ts) whose
// link is gone go at the first sweep, after ENOBUFS, and as soon as a link
// whose record says it has one (nft=1) is deleted: they run nft, so not at
// every interval. The 802.1Q sub-interfaces no lease uses any more
// (vlan/subif.ts) go at each sweep, and leased NICs that came back are
// restored (phys/restore.ts), if the lease lock is free. It keeps no state of its own: a
// reaper killed at any moment and restarted reconciles from the kernel.
// Runs on the event loop (netgrant-reap, netgrant-serve); no namespace
// change, so nothing here is thread-sensitive.
import { Netlink, RTMGRP_LINK, RTM_NEWLINK, RTM_DELLINK, decodeLink, dumpLinks, watchReadable } from '@netgrant/core';
import { parseRecord } from './record.js';
import { cull, reapIfStale, type OnReap } from './leases.js';
import { cullTables, type LeaseTable } from './tables.js';
import { reapVlans } from './vlan/reap.js';
import { reapPhys } from './phys/restore.js';

export interface ReaperOptions {
  /** The sweep interval. */
  sweepMs: number;
  onReap?: OnReap;
  onReapTable?: (t: LeaseTable) => void;
  /** Something restored only in part (a leased NIC back whose name is taken). */
  onWarning?: (message: string) => void;
  /** A failure of one round (the reaper goes on). */
  onError: (e: unknown) => void;
}

export interface Reaper {
  /** One sweep now: the number of leases (and lease tables) deleted. */
  sweep(): number;
  stop(): void;
}

export function startReaper(o: ReaperOptions): Reaper {
  const events = Netlink.open(RTMGRP_LINK);
  let req: Netlink;
  try {
    req = Netlink.open();
  } catch (e) {
    events.close();
    throw e;
  }
  const leases = (): number => {
    let n = 0;
    cull(req, (lease, reason) => {
      n++;
      o.onReap?.(lease, reason);
    });
    return n + reapVlans(req, 0) + reapPhys(req, 0, o.onWarning);
  };
  const tables = (): number => {
    let n = 0;
    cullTables(() => dumpLinks(req), (t) => {
      n++;
      o.onReapTable?.(t);
    });
    return n;
  };
  const sweep = (): number => leases() + tables();
  const guarded = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      o.onError(e);
    }
  };
  const onEvents = () =>
    guarded(() => {
      const { messages, overflow } = events.notifications();
      if (overflow) {
        sweep();
        return;
      }
      for (const m of messages) {
        if (m.type !== RTM_NEWLINK && m.type !== RTM_DELLINK) continue;
        const link = decodeLink(m);
        const record = parseRecord(link.alias);
        if (!record) continue;
        if (m.type === RTM_NEWLINK) guarded(() => reapIfStale(req, { link, record }, o.onReap));
        else if (record.nft) guarded(tables);
      }
    });
  const watch = watchReadable(events.fd, onEvents);
  // A table goes stale only when its link goes, which the kernel always reports: the interval sweeps links alone.
  const timer = setInterval(() => guarded(leases), o.sweepMs);
  guarded(sweep);
  return {
    sweep,
    stop() {
      clearInterval(timer);
      watch.close();
      events.close();
      req.close();
    },
  };
}
