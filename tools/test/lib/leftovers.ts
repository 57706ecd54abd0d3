// What a failed (or any) run of a program may not leave behind, checked
// from the test's own namespace: interfaces, /run/netns names, processes
// (and with them the fds, locks and namespaces they hold), and fds of the
// test process itself. Processes a test starts carry a tag variable unique
// to the test process, so only its own descendants are ever looked at.
import { readdirSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { listOpenFds } from '@netgrant/core';
import { sh } from './harness.js';

const TAG_VAR = 'NETGRANT_LEFTOVER_TAG';
const TAG = `${TAG_VAR}=${process.pid}-${randomBytes(6).toString('hex')}`;

/** The environment entry every process a test starts should carry. */
export const TAG_ENV: Record<string, string> = { [TAG_VAR]: TAG.slice(TAG_VAR.length + 1) };

export interface Snapshot {
  links: string[];
  netns: string[];
  fds: number[];
}

/** Interface names in the current network namespace. */
export function linkNames(): string[] {
  const r = sh('ip -j link show');
  return (JSON.parse(r.stdout) as { ifname: string }[]).map((l) => l.ifname).sort();
}

export function snapshot(): Snapshot {
  return { links: linkNames(), netns: readdirSync('/run/netns').sort(), fds: listOpenFds() };
}

/** Pids of live processes carrying this test's tag (none once every started program has ended). */
export function taggedProcesses(): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/environ`).includes(TAG)) out.push(Number(name));
    } catch {
      /* gone, or a kernel thread */
    }
  }
  return out;
}

/** Locks in /proc/locks held by the given pids. */
function locksOf(pids: number[]): string[] {
  const set = new Set(pids.map(String));
  return readFileSync('/proc/locks', 'utf8').split('\n').filter((l) => set.has(l.split(/\s+/)[4] ?? ''));
}

/**
 * What differs from `before`, as one description, or null when nothing was
 * left behind. A process a program started may take a moment to see EOF
 * and exit after its parent is gone, and a namespace's devices go a moment
 * after its last process: both get up to settleMs.
 */
export function leftovers(before: Snapshot, settleMs = 2000): string | null {
  let pids = taggedProcesses();
  // A launch's host end (mkveth) goes a moment after its namespace's last process: the kernel tears namespaces down asynchronously.
  for (let waited = 0; (pids.length || linkNames().join() !== before.links.join()) && waited < settleMs; waited += 20) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    pids = taggedProcesses();
  }
  const now = snapshot();
  const problems: string[] = [];
  if (now.links.join() !== before.links.join()) problems.push(`interfaces ${before.links.join(',')} -> ${now.links.join(',')}`);
  if (now.netns.join() !== before.netns.join()) problems.push(`/run/netns ${before.netns.join(',')} -> ${now.netns.join(',')}`);
  if (now.fds.join() !== before.fds.join()) problems.push(`test process fds ${before.fds.join(',')} -> ${now.fds.join(',')}`);
  if (pids.length) problems.push(`processes still running: ${pids.join(',')}; their locks: ${JSON.stringify(locksOf(pids))}`);
  return problems.length ? problems.join('; ') : null;
}
