// The FdSpace of a chain run inside the resident server: the numbers on the
// chain's command line (0, 1, 3, ...) map to fds of this connection only;
// waiting is asynchronous (the event loop serves other connections
// meanwhile). close() releases every fd the chain still holds.
import { InputError } from '../errors.js';
import { closeQuietly, isOpen } from '../fd.js';
import { isUnixSocket } from '../socket.js';
import { watchReadable } from '../poll.js';
import type { FdSpace } from './fdargs.js';

export interface MapFds extends FdSpace {
  /** Close every fd the chain holds (the connection's included). */
  release(): void;
}

/** Wait for readability with uv_poll on the event loop; false on timeout. */
export function waitAsync(fd: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const watch = watchReadable(fd, () => finish(true));
    const finish = (ready: boolean) => {
      if (timer) clearTimeout(timer);
      watch.close();
      resolve(ready);
    };
    if (timeoutMs >= 0) timer = setTimeout(() => finish(false), timeoutMs);
  });
}

export function mapFds(initial: Record<number, number>): MapFds {
  const table = new Map<number, number>(Object.entries(initial).map(([n, fd]) => [Number(n), fd]));
  const drop = (n: number) => {
    const real = table.get(n);
    table.delete(n);
    if (real !== undefined && real > 2 && ![...table.values()].includes(real)) closeQuietly(real);
  };
  const lookup = (n: number, what: string): number => {
    const real = table.get(n);
    if (real === undefined || !isOpen(real)) throw new InputError(`${what}: fd ${n} is not open`);
    return real;
  };
  return {
    fd: lookup,
    socket(n, what) {
      const real = lookup(n, what);
      if (!isUnixSocket(real)) throw new InputError(`${what}: fd ${n} is not a unix socket`);
      return real;
    },
    place(fds, targets) {
      targets.forEach((t, i) => {
        drop(t);
        table.set(t, fds[i]!);
      });
    },
    keep: () => undefined,
    close: drop,
    wait: waitAsync,
    // A timer on the event loop; the server narrows it to the connection's deadline.
    nap: (ms) => new Promise((resolve) => setTimeout(() => resolve(true), ms)),
    release() {
      for (const n of [...table.keys()]) drop(n);
    },
  };
}
