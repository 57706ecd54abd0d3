// Checks and moves for fds named on a link's command line.
import { readdirSync, readlinkSync, readFileSync } from 'node:fs';
import { InputError, SysError } from '../errors.js';
import { isOpen, dupCloexec, dup3, closeQuietly } from '../fd.js';
import { isUnixSocket } from '../socket.js';

let runtimeFds: Set<number> | undefined;

/**
 * The fds Node opened for itself before any JS ran (its event loop's epoll
 * and eventfds, its self-pipes). When a chain names an fd the previous link
 * did not pass, that number may be one of these: it must read as "not open",
 * never be sent or used. Snapshot taken once, before a link opens anything.
 */
export function nodeRuntimeFds(): ReadonlySet<number> {
  if (runtimeFds) return runtimeFds;
  runtimeFds = new Set();
  const pipes = new Map<string, { fd: number; mode: number }[]>();
  for (const name of readdirSync('/proc/self/fd')) {
    const fd = Number(name);
    if (!(fd >= 3)) continue;
    let target: string;
    let flags: number;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
      flags = parseInt(readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1').match(/flags:\s+(\d+)/)![1]!, 8);
    } catch {
      continue; // the directory fd readdir used, already closed
    }
    if (/^anon_inode:\[(eventpoll|eventfd|io_uring|signalfd|timerfd)\]$/.test(target)) runtimeFds.add(fd);
    else if (target.startsWith('pipe:') && flags & 0o2000000) {
      const ends = pipes.get(target) ?? [];
      ends.push({ fd, mode: flags & 3 });
      pipes.set(target, ends);
    }
  }
  // A pipe with both ends open here, close-on-exec: Node's own self-pipe.
  for (const ends of pipes.values()) {
    if (ends.some((e) => e.mode === 0) && ends.some((e) => e.mode === 1)) for (const e of ends) runtimeFds.add(e.fd);
  }
  return runtimeFds;
}

function checkNotRuntime(fd: number, what: string): void {
  if (nodeRuntimeFds().has(fd)) throw new InputError(`${what}: fd ${fd} is not open (it was not passed to this program)`);
}

/** fd must be an open unix socket (InputError, exit 100, otherwise). */
export function checkSocketFd(fd: number, what: string): void {
  checkNotRuntime(fd, what);
  let ok: boolean;
  try {
    ok = isUnixSocket(fd);
  } catch (e) {
    if (e instanceof SysError && e.code === 'EBADF') throw new InputError(`${what}: fd ${fd} is not open`);
    throw e;
  }
  if (!ok) throw new InputError(`${what}: fd ${fd} is not a unix socket`);
}

/** fd must be open (InputError otherwise). */
export function checkOpenFd(fd: number, what: string): void {
  checkNotRuntime(fd, what);
  if (!isOpen(fd)) throw new InputError(`${what}: fd ${fd} is not open`);
}

/**
 * Move fds[i] to targets[i], not close-on-exec, whatever the numbers (a
 * source may sit on another's target). The sources are closed. On failure
 * every source and every target already placed is closed.
 */
export function placeFds(fds: readonly number[], targets: readonly number[]): void {
  if (fds.length !== targets.length) throw new Error('placeFds: length mismatch');
  const floor = Math.max(2, ...fds, ...targets) + 1;
  const temps: number[] = [];
  const placed: number[] = [];
  try {
    for (const fd of fds) temps.push(dupCloexec(fd, floor));
    for (const fd of fds) if (!targets.includes(fd)) closeQuietly(fd);
    temps.forEach((t, i) => {
      dup3(t, targets[i]!, false);
      placed.push(targets[i]!);
    });
  } catch (e) {
    for (const fd of [...fds, ...placed]) closeQuietly(fd);
    throw e;
  } finally {
    for (const t of temps) closeQuietly(t);
  }
}
