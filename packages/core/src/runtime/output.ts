// Messages to fd 2, synchronously, one line each: `prog: fatal: ...` or
// `prog: warning: ...`. Never through process.stderr (that would make fd 2
// non-blocking for the next program, and queued writes are lost on exec).
import { writeSync } from 'node:fs';

function writeAll(fd: number, data: Buffer): void {
  let off = 0;
  let spins = 0;
  while (off < data.length) {
    try {
      off += writeSync(fd, data, off);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN' && spins++ < 1000) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
        continue;
      }
      return; // stderr closed or broken: nothing else we can do
    }
  }
}

/** Write one line to stderr. Newlines inside msg are replaced so it stays one line. */
export function say(prog: string, kind: 'fatal' | 'warning' | 'info', msg: string): void {
  writeAll(2, Buffer.from(`${prog}: ${kind}: ${msg.replace(/[\r\n]+/g, ' ')}\n`));
}

export function warn(prog: string, msg: string): void {
  say(prog, 'warning', msg);
}
