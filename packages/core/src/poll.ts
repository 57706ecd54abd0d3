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

/** Watch fd for readability; the watch starts at once. */
export function watchReadable(fd: number, onReadable: () => void): ReadWatch {
  // koffi's typings declare the callback as (events); it is really (status, events).
  const cb = (() => onReadable()) as unknown as (ev: unknown) => void;
  const handle = koffi.node.poll(fd, { readable: true }, cb);
  return {
    start: () => handle.start({ readable: true }, cb),
    stop: () => handle.stop(),
    close: () => {
      handle.stop();
      handle.close();
    },
  };
}
