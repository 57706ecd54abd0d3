// The reaper's rules: when a lease no longer holds. A lease is deleted once
// its holder is gone or the device no longer matches its record, whatever
// the holder did with its fd: the kernel lets a tap fd's holder, with no
// capability at all, make the tap persistent (TUNSETPERSIST, so it outlives
// every fd), give it to another uid or group (TUNSETOWNER/TUNSETGROUP),
// detach its queues (TUNSETQUEUE) and change its host-side MAC
// (SIOCSIFHWADDR). A macvtap outlives its fds whatever anyone does: its
// lease ends once no process holds an fd of the node its queues were
// opened through (holders.ts), after a grace for fds in flight from the
// creator to its client. An administrator's `persist` record is never stale.
import { IFF_LOWER_UP, macText, type LinkInfo } from '@netgrant/core';
import type { LeaseRecord } from './record.js';
import { heldDeletedNodes } from './holders.js';

/**
 * How long a macvtap lease holds without a holder in sight after it was
 * made: its fds travel from the creator (which exits) to the client in a
 * unix socket message, where no /proc scan sees them.
 */
export const MACVTAP_GRACE_MS = 2000;

/** What the holder rule reads, once per round: the held nodes (scanned on first use) and the time. */
export interface StaleContext {
  held(): ReadonlySet<string>;
  nowMs: number;
}

/** The monotonic clock in ms (the records' `born`). */
export const monotonicMs = (): number => Number(process.hrtime.bigint() / 1000000n);

/** A context that scans /proc at most once, and only if a record asks for it. */
export function staleContext(): StaleContext {
  let held: Set<string> | undefined;
  return { held: () => (held ??= heldDeletedNodes()), nowMs: monotonicMs() };
}

/** Why the lease on link is over (its device should be deleted), or null while it holds. */
export function staleReason(link: LinkInfo, rec: LeaseRecord, ctx: StaleContext = staleContext()): string | null {
  if (rec.kind !== 'lease') return null;
  if (rec.node !== undefined) {
    const young = rec.born !== undefined && ctx.nowMs - rec.born < MACVTAP_GRACE_MS;
    if (!young && !ctx.held().has(rec.node)) return rec.node === '0.0' ? 'never opened' : 'no process holds its fds';
  }
  if (link.tun) {
    const t = link.tun;
    if (t.persist) return 'made persistent';
    if (rec.owner !== undefined && (t.owner ?? null) !== rec.owner) return `owner changed to ${t.owner ?? 'none'}`;
    if (rec.group !== undefined && (t.group ?? null) !== rec.group) return `group changed to ${t.group ?? 'none'}`;
    // A multiqueue tap reports its attached queues; for any tap, an up
    // device without carrier has none attached (tun turns carrier off when
    // its last queue goes; a holder's TUNSETCARRIER off is the host side
    // changed, which ends the lease too).
    if (t.multiQueue && t.queues === 0) return 'no queue attached';
    if (link.up && !(link.flags & IFF_LOWER_UP)) return 'no carrier (no queue attached)';
  }
  if (rec.mac !== undefined && macText(link.mac) !== rec.mac) return `host-side MAC changed to ${macText(link.mac) ?? 'none'}`;
  return null;
}
