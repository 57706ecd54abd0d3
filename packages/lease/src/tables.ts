// Lease tables: nftables tables that belong to a lease (mkveth's NAT and
// port forwards). Each is an `inet` table named after its lease's link,
// whose comment is the link's lease record. The kernel does not tie a
// table to a device, so a table whose link is gone (or carries another
// record) is stale and is deleted: by the creator under the lease lock
// before it counts (so nothing depends on a reaper having run), and by the
// reaper. Tables are deleted by handle, so a stale table's name given to a
// new lease's table in the meantime is never the one deleted.
//
// The tables are listed over nfnetlink (core's listNftTables); nft, which
// makes and deletes them, is run from its fixed path, with an empty
// environment, in this thread's network namespace (a child inherits the
// calling thread's).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { SysError, ifNameProblem, listNftTables, type LinkInfo, type NftTable } from '@netgrant/core';
import { parseRecord } from './record.js';

export const NFT = '/usr/sbin/nft';

export interface LeaseTable {
  name: string;
  handle: number;
  /** The lease record it was made for. */
  record: string;
}

/** Run nft with args (and a ruleset on stdin); SysError with nft's first line on failure. */
export function nft(args: string[], what: string, input?: string): string {
  const r = spawnSync(NFT, args, { input, env: {}, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], timeout: 30000 });
  if (r.error) throw new SysError(`${what}: run ${NFT}`, Math.abs((r.error as NodeJS.ErrnoException).errno ?? 5));
  if (r.status !== 0) {
    const line = (r.stderr || r.stdout).split('\n').find((l) => l.trim() !== '') ?? `exit ${r.status ?? r.signal}`;
    throw new SysError(what, 5 /* EIO */, `nft: ${line.replace(/^Error: /, '')}`);
  }
  return r.stdout;
}

/**
 * The lease tables of this namespace: its inet tables (read over
 * nfnetlink) whose name is an interface name and whose comment is a lease
 * record. None where nft is not installed, or the kernel has no nf_tables
 * (no nfnetlink: EPROTONOSUPPORT; nfnetlink without its nftables
 * subsystem: EINVAL): nothing could have made one.
 */
export function leaseTables(): LeaseTable[] {
  if (!existsSync(NFT)) return [];
  let tables: NftTable[];
  try {
    tables = listNftTables('inet');
  } catch (e) {
    if (e instanceof SysError && (e.code === 'EPROTONOSUPPORT' || e.code === 'EINVAL')) return [];
    throw e;
  }
  const out: LeaseTable[] = [];
  for (const t of tables) {
    if (ifNameProblem(t.name) || t.comment === undefined || !parseRecord(t.comment)) continue;
    out.push({ name: t.name, handle: t.handle, record: t.comment });
  }
  return out;
}

/** Is the table's lease gone: no link of its name carries its record? */
export function tableStale(t: LeaseTable, links: readonly LinkInfo[]): boolean {
  return !links.some((l) => l.name === t.name && l.alias === t.record);
}

/** Delete a lease table by handle (already gone is not an error). */
export function deleteLeaseTable(t: LeaseTable): void {
  try {
    nft(['delete', 'table', 'inet', 'handle', String(t.handle)], `delete table inet ${t.name}`);
  } catch (e) {
    if (!(e instanceof SysError && /No such file or directory/.test(e.message))) throw e;
  }
}

/**
 * Delete every stale lease table; the live ones. The tables are listed
 * before the links, so a lease made in between (its link first, then its
 * table) is never taken for stale.
 */
export function cullTables(dumpLinks: () => LinkInfo[], onReap?: (t: LeaseTable) => void): LeaseTable[] {
  const tables = leaseTables();
  if (tables.length === 0) return [];
  const links = dumpLinks();
  const live: LeaseTable[] = [];
  for (const t of tables) {
    if (!tableStale(t, links)) {
      live.push(t);
      continue;
    }
    deleteLeaseTable(t);
    onReap?.(t);
  }
  return live;
}
