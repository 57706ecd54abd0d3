// Readiness on the event loop for fds Node does not own: koffi's wrapper of
// libuv's uv_poll. Level-triggered: onReadable runs on every loop turn while
// the fd stays readable and the watch is started. uv_poll_init sets
// O_NONBLOCK on the open file description (notes/node-syscalls.md §3): use
// it only on fds that are not handed on as they are.
import koffi from 'koffi';

export interface ReadWatch {
  start(): void;
  stop(): void;
  /** Stop for good and free the handle. */
  close(): void;
}

/**
 * Watch fd for readability; the watch starts at once. onReadable runs from
 * setImmediate, not from koffi's native callback: under Node 26 a native
 * callback does not drain V8's microtask queue when it returns, so a
 * promise it settled (waitAsync's) would resume only at the next timer or
 * other callback that does (seen: the resident server ended each
 * connection's chain at its -t timer, a second late). At most one
 * onReadable is queued at a time, and none runs once the watch is stopped
 * or closed.
 */
export function watchReadable(fd: number, onReadable: () => void): ReadWatch {
  let watching = true;
  let queued = false;
  const run = () => {
    queued = false;
    if (watching) onReadable();
  };
  // koffi's typings declare the callback as (events); it is really (status, events).
  const cb = (() => {
    if (queued) return;
    queued = true;
    setImmediate(run);
  }) as unknown as (ev: unknown) => void;
  const handle = koffi.node.poll(fd, { readable: true }, cb);
  return {
    start: () => {
      watching = true;
      handle.start({ readable: true }, cb);
    },
    stop: () => {
      watching = false;
      handle.stop();
    },
    close: () => {
      watching = false;
      handle.stop();
      handle.close();
    },
  };
}
