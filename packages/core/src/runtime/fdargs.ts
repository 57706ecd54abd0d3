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
 * How a link reaches fds named on its command line. In a process of its own
 * (the normal case) an fd number is the fd itself; in the resident server a
 * chain's numbers map to the connection's own fds. Every link goes through
 * this, so the same code serves both.
 */
export interface FdSpace {
  /** The real fd behind number n, checked open (InputError otherwise). */
  fd(n: number, what: string): number;
  /** Same, checked to be a unix socket. */
  socket(n: number, what: string): number;
  /** Move real fds (consumed) to numbers targets and hand them on. */
  place(fds: readonly number[], targets: readonly number[]): void;
  /** Hand number n on to the next program as it is. */
  keep(n: number): void;
  /** Close number n (e.g. fds sent away). */
  close(n: number): void;
  /** Wait until real fd is readable; false on timeout. */
  wait(fd: number, timeoutMs: number): Promise<boolean>;
  /** Pause up to ms (a retry's nap); false once the waits' bound (the connection's deadline) has passed. */
  nap(ms: number): Promise<boolean>;
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
