// mkveth's kernel state, seen from the test's own namespace (the launcher's):
// its host ends (ngv-*), their records, and whatever a launch may leave
// behind there: links, routes, proxy neighbour entries.
import { parseRecord, type LeaseRecord } from '@netgrant/lease';
import { sh, until } from './harness.js';

export interface HostEnd {
  name: string;
  master: string | undefined;
  record: LeaseRecord | null;
}

/** mkveth's host ends in the test's namespace, with their records. */
export function hostEnds(): HostEnd[] {
  const links = JSON.parse(sh('ip -d -j link show type veth').stdout || '[]') as { ifname: string; master?: string; ifalias?: string }[];
  return links.filter((l) => l.ifname.startsWith('ngv-')).map((l) => ({ name: l.ifname, master: l.master, record: parseRecord(l.ifalias) }));
}

/** What launches left in the test's namespace, as one description; null when nothing. */
export function vethLeftovers(): string | null {
  const found = [
    ...hostEnds().map((h) => `link ${h.name}`),
    ...sh('ip route show; ip -6 route show; ip neigh show proxy; ip -6 neigh show proxy').stdout.split('\n').filter((l) => l.includes('ngv-')),
  ];
  return found.length ? found.join('; ') : null;
}

/** Wait (the kernel tears a namespace down a moment after its last reference) until nothing is left; the leftovers if something still is. */
export async function settled(ms = 10000): Promise<string | null> {
  await until(() => vethLeftovers() === null, ms);
  return vethLeftovers();
}
