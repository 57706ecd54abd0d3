// The FdSpace of a link running in a process of its own: numbers are real
// fds; placing dup3()s onto them; waiting is a blocking poll(2) on this
// thread (no event loop, no threadpool: safe after namespace changes).
import { closeQuietly } from '../fd.js';
import { waitFd } from '../socket.js';
import { checkOpenFd, checkSocketFd, placeFds, type FdSpace } from './fdargs.js';
import type { HandOn } from './handon.js';
import { markRuntimeFdsClobbered } from './startfds.js';

export function processFds(handOn: HandOn): FdSpace {
  return {
    fd(n, what) {
      checkOpenFd(n, what);
      return n;
    },
    socket(n, what) {
      checkSocketFd(n, what);
      return n;
    },
    place(fds, targets) {
      markRuntimeFdsClobbered(targets);
      placeFds(fds, targets);
      for (const t of targets) handOn.keep(t);
    },
    keep: (n) => handOn.keep(n),
    close: (n) => closeQuietly(n),
    wait: (fd, timeoutMs) => Promise.resolve(waitFd(fd, timeoutMs)),
    // A process of its own may block its thread: no deadline but the caller's.
    nap: (ms) => {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
      return Promise.resolve(true);
    },
  };
}
