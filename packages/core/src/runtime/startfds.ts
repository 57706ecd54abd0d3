// The fds this process had when the link started, in two kinds:
// - Node's own (its event loop's epoll and eventfds, its self-pipes), opened
//   before any JS ran. A chain that names an fd the previous link did not
//   pass may hit one of these numbers: it must read as "not open".
// - inherited ones (everything else >= 3). Node marks fds 0-15 close-on-exec
//   at startup; a chain link must hand every inherited fd it did not touch
//   on to the next program, like any C chain loader. They are recorded with
//   their identity (st_dev, st_ino) so that a number the link closed and
//   that was later reused by one of our own fds is not handed on.
import { readdirSync, readlinkSync, fstatSync } from 'node:fs';
import { getStatusFlags, isCloexec } from '../fd.js';

interface StartFds {
  node: Set<number>;
  inherited: Map<number, string>;
}
let snapshot: StartFds | undefined;

/** An fd's identity (st_dev:st_ino), or null if it is not open. */
export function fdIdentity(fd: number): string | null {
  try {
    const st = fstatSync(fd, { bigint: true });
    return `${st.dev}:${st.ino}`;
  } catch {
    return null;
  }
}

function take(): StartFds {
  const node = new Set<number>();
  const inherited = new Map<number, string>();
  const pipes = new Map<string, { fd: number; mode: number }[]>();
  // Pipes whose flags could not be read: fail closed, every end is Node's (never handed on).
  const unknownPipes = new Set<string>();
  const others: { fd: number; target: string }[] = [];
  for (const name of readdirSync('/proc/self/fd')) {
    const fd = Number(name);
    if (!(fd >= 3)) continue;
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // the directory fd readdir used, already closed
    }
    if (/^anon_inode:\[(eventpoll|eventfd|io_uring|signalfd|timerfd)\]$/.test(target)) {
      node.add(fd);
      continue;
    }
    // Only a pipe's flags matter (the self-pipe test below), read with
    // fcntl: cheaper than parsing /proc/self/fdinfo (docs/perf.md).
    if (target.startsWith('pipe:')) {
      let cloexec: boolean;
      let mode: number;
      try {
        cloexec = isCloexec(fd);
        mode = getStatusFlags(fd) & 3;
      } catch {
        unknownPipes.add(target);
        node.add(fd);
        continue;
      }
      if (cloexec) {
        const ends = pipes.get(target) ?? [];
        ends.push({ fd, mode });
        pipes.set(target, ends);
      }
    }
    others.push({ fd, target });
  }
  // A pipe with both ends open here, close-on-exec: Node's own self-pipe.
  for (const ends of pipes.values()) {
    if (ends.some((e) => e.mode === 0) && ends.some((e) => e.mode === 1)) for (const e of ends) node.add(e.fd);
  }
  for (const { fd, target } of others) {
    if (unknownPipes.has(target)) node.add(fd);
    if (node.has(fd)) continue;
    const id = fdIdentity(fd);
    if (id) inherited.set(fd, id);
  }
  return { node, inherited };
}

let loadFailure: unknown;

/** Take the snapshot (once, before a link opens anything); throws if that failed at load. */
export function snapshotStartFds(): void {
  if (loadFailure !== undefined) throw loadFailure;
  snapshot ??= take();
}
// At load: core is the first module the bundle runs, so nothing has touched
// stdio yet (initialising process.stdout on a pipe opens /dev/null). A
// failure here (EMFILE, ENOMEM) is reported by the runtime as one line.
try {
  snapshotStartFds();
} catch (e) {
  loadFailure = e;
}

/** fds Node opened for itself before any JS ran. */
export function nodeRuntimeFds(): ReadonlySet<number> {
  snapshotStartFds();
  return snapshot!.node;
}

/** The inherited fds (>= 3) with their identities. */
export function inheritedFds(): ReadonlyMap<number, string> {
  snapshotStartFds();
  return snapshot!.inherited;
}

let clobbered = false;

/** A link placed an fd over one of Node's own: the event loop is unusable from now on. */
export function markRuntimeFdsClobbered(targets: readonly number[]): void {
  if (targets.some((t) => nodeRuntimeFds().has(t))) clobbered = true;
}

export function runtimeFdsClobbered(): boolean {
  return clobbered;
}
