// The fds a chain hands on to the next program: every inherited fd, plus
// every fd a link kept, each with its identity (st_dev:st_ino) at the time.
// At exec only those still open as the same file are handed on, so a number
// a link closed and one of our own fds later reused stays close-on-exec.
import { fdIdentity, inheritedFds } from './startfds.js';

export class HandOn {
  private readonly fds = new Map<number, string>(inheritedFds());

  /** Hand fd on (recording what it is now). */
  keep(fd: number): void {
    const id = fdIdentity(fd);
    if (id === null) throw new Error(`keep: fd ${fd} is not open`);
    this.fds.set(fd, id);
  }

  /** The fds to hand on now. */
  current(): number[] {
    return [...this.fds].filter(([fd, id]) => fdIdentity(fd) === id).map(([fd]) => fd);
  }
}
