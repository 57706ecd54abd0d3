// Checks and moves for fds named on a link's command line.
import { InputError, SysError } from '../errors.js';
import { isOpen, dupCloexec, dup3, closeQuietly } from '../fd.js';
import { isUnixSocket } from '../socket.js';
import { nodeRuntimeFds } from './startfds.js';

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
