// Lease tables: nftables tables that belong to a lease (mkveth's NAT and
// port forwards). Each is an `inet` table named after its lease's link,
// whose comment is the link's lease record. The kernel does not tie a
// table to a device, so a table whose link is gone (or carries another
// record) is stale and is deleted: by the creator under the lease lock
// before it counts (so nothing depends on a reaper having run), and by the
// reaper. Tables are deleted by handle, so a stale table's name given to a
// new lease's table in the meantime is never the one deleted.
//
// nft is run from its fixed path, with an empty environment, in this
// thread's network namespace (a child inherits the calling thread's).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { SysError, ifNameProblem, type LinkInfo } from '@netgrant/core';
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

/** The lease tables of this namespace (none where nft is not installed, or the kernel has no nf_tables: nothing could have made one). */
export function leaseTables(): LeaseTable[] {
  if (!existsSync(NFT)) return [];
  const out: LeaseTable[] = [];
  let tables: string;
  try {
    tables = nft(['list', 'tables', 'inet'], 'list the nftables tables');
  } catch (e) {
    // socket(AF_NETLINK, NETLINK_NETFILTER): EPROTONOSUPPORT, a kernel without nf_tables.
    if (e instanceof SysError && /Unable to initialize Netlink socket: Protocol not supported/.test(e.message)) return [];
    throw e;
  }
  for (const m of tables.matchAll(/^table inet (\S+)$/gm)) {
    const name = m[1]!;
    if (ifNameProblem(name)) continue;
    let text: string;
    try {
      text = nft(['-a', 'list', 'table', 'inet', name], `list table inet ${name}`);
    } catch {
      continue; // gone meanwhile
    }
    const head = /^table inet (\S+) \{ # handle (\d+)\n\tcomment "([^"\n]*)"$/m.exec(text);
    if (!head || head[1] !== name || !parseRecord(head[3])) continue;
    out.push({ name, handle: Number(head[2]), record: head[3]! });
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
