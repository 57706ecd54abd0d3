// Run a chain on one end of a socketpair (as its fds 0 and 1), keeping the
// other end: the socketpair model of DESIGN.md, for Node programs and for
// the ipc-pair link.
import type { ChildProcess } from 'node:child_process';
import { socketpair, setPassCred } from './socket.js';
import { closeQuietly } from './fd.js';
import { SysError } from './errors.js';

export interface Pair {
  /** Our end of the socketpair (close-on-exec). */
  fd: number;
  /** The chain running on the other end. */
  child: ChildProcess;
}

/**
 * Spawn argv with one end of a new socketpair as its stdin and stdout
 * (stderr inherited, nothing else), and resolve to the other end once the
 * child runs. The child's credentials are what the kernel records when it
 * sends, so a server chain starting with `peer-check` learns the real sender.
 */
export function spawnOnSocketpair(argv: readonly (string | Buffer)[], env: NodeJS.ProcessEnv = process.env): Promise<Pair> {
  const [ours, theirs] = socketpair();
  // The kernel records a sender's credentials only if one end has
  // SO_PASSCRED when the data is sent: set it before the child can read.
  setPassCred(theirs, true);
  return new Promise<Pair>((resolve, reject) => {
    let child: ChildProcess;
    try {
      const words = argv.map((w) => w.toString());
      // Loaded here, not at the top: node:child_process costs ~2.5 ms to
      // load and almost no link spawns anything (docs/perf.md).
      const { spawn } = require('node:child_process') as typeof import('node:child_process');
      child = spawn(words[0]!, words.slice(1), { stdio: [theirs, theirs, 'inherit'], env });
    } catch (e) {
      closeQuietly(ours);
      closeQuietly(theirs);
      reject(e);
      return;
    }
    closeQuietly(theirs);
    child.once('spawn', () => resolve({ fd: ours, child }));
    child.once('error', (e: NodeJS.ErrnoException) => {
      closeQuietly(ours);
      reject(new SysError(`start ${words0(argv)}`, e.errno !== undefined ? -e.errno : 2));
    });
  });
}

function words0(argv: readonly (string | Buffer)[]): string {
  return argv[0]?.toString() ?? '';
}
