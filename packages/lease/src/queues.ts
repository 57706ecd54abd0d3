// Where a creator places its queue fds (-d FD[,FD...]): one fd number per
// queue, or a first one and the next ones after it; never stdio, never the
// namespace fd it was given.
import { UsageError, parseFdList } from '@netgrant/core';

/** The fd numbers for `queues` queue fds from -d's text (default 3, 4, ...). */
export function queueFds(text: string | undefined, queues: number, netnsFd: number | undefined): number[] {
  let fds: number[];
  if (text === undefined) fds = Array.from({ length: queues }, (_, i) => 3 + i);
  else {
    const listed = parseFdList(text, '-d');
    if (listed.length === 1) fds = Array.from({ length: queues }, (_, i) => listed[0]! + i);
    else if (listed.length === queues) fds = listed;
    else throw new UsageError(`-d lists ${listed.length} fds for ${queues} queues`);
  }
  if (netnsFd !== undefined && fds.includes(netnsFd)) throw new UsageError(`-d: fd ${netnsFd} is the namespace fd`);
  if (fds.some((f) => f <= 2)) throw new UsageError('-d: fds 0, 1 and 2 are stdio');
  return fds;
}
