// exec with the hygiene a Node parent needs (notes/node-syscalls.md §4): the
// exec'd program must not be able to tell it was started by Node.
//
// This module must be loaded before anything touches process.stdout/stderr:
// it records the O_NONBLOCK state of fds 0-2 at load time and restores it.
import { readFileSync } from 'node:fs';
import { libc, addressOf } from './ffi.js';
import { SysError } from './errors.js';
import { clearSignalMask } from './sigmask.js';
import { getStatusFlags, setStatusFlags, setCloexec, isOpen, O_NONBLOCK } from './fd.js';

const startFlags: (number | null)[] = [0, 1, 2].map((fd) => {
  try {
    return getStatusFlags(fd);
  } catch {
    return null;
  }
});

const signalFn = libc.func('void *signal(int sig, void *handler)');
const sigactionFn = libc.func('int sigaction(int sig, const void *act, void *oldact)');
const execvFn = libc.func('int execv(void *path, void *argv)');
const execvpFn = libc.func('int execvp(void *file, void *argv)');
const execveFn = libc.func('int execve(void *path, void *argv, void *envp)');
const execvpeFn = libc.func('int execvpe(void *file, void *argv, void *envp)');

const exitFn = libc.func('void _exit(int status)');

/**
 * Leave now with status, without Node's teardown. A link may have placed
 * fds over numbers Node's event loop used (when the chain did not pass
 * them): the loop's teardown would abort. Nothing is pending: every
 * message is written synchronously.
 */
export function exitNow(status: number): never {
  exitFn(status);
  throw new Error('unreachable');
}

const SIGPIPE = 13;
const SIGXFSZ = 25;
const SIGKILL = 9;
const SIGSTOP = 19;
/** glibc's struct sigaction on x86_64 (sa_handler first). */
const SIGACTION_SIZE = 152;

/**
 * Reset every signal Node or libuv catches to its default, as execve will:
 * from here on no handler of this process runs. Once a link has placed fds
 * over the event loop's own, a handler (libuv's SIGCHLD handler writes to
 * its signal pipe) could write to a socket in their place and, with SIGPIPE
 * back at default, kill the process instead of letting a failed exec report.
 * Ignored signals stay ignored (execve keeps them).
 */
function resetCaughtSignals(): void {
  const old = Buffer.alloc(SIGACTION_SIZE);
  for (let sig = 1; sig < 32; sig++) {
    if (sig === SIGKILL || sig === SIGSTOP) continue;
    if ((sigactionFn(sig, null, old) as number) < 0) continue;
    if (old.readBigUInt64LE(0) > 1n) signalFn(sig, null);
  }
}

/** The status flags fds 0-2 had when this process started (null: closed). */
export function stdioStartFlags(): readonly (number | null)[] {
  return startFlags;
}

/**
 * The user arguments of this process, byte-exact from /proc/self/cmdline
 * (process.argv is UTF-8 decoded and lossy): everything after the script.
 */
export function rawArgs(): Buffer[] {
  const words = splitNul(readFileSync('/proc/self/cmdline'));
  const n = process.argv.length - 2;
  return n > 0 ? words.slice(words.length - n) : [];
}

/** Split a NUL-separated, NUL-terminated list of byte strings. */
export function splitNul(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] === 0) {
      out.push(buf.subarray(start, i));
      start = i + 1;
    }
  }
  if (start < buf.length) out.push(buf.subarray(start));
  return out;
}

/** A NULL-terminated char*[] for words; keep the returned `keep` alive across the call. */
function pointerArray(words: readonly (Buffer | string)[]): { array: Buffer; keep: Buffer[] } {
  const keep = words.map((w) => Buffer.concat([Buffer.isBuffer(w) ? w : Buffer.from(w), Buffer.alloc(1)]));
  const array = Buffer.alloc(8 * (keep.length + 1));
  keep.forEach((b, i) => array.writeBigUInt64LE(addressOf(b), 8 * i));
  return { array, keep };
}

/**
 * Put the process in the state a freshly exec'd program expects: fds 0-2 and
 * `keepFds` inheritable, stdio blocking mode as at start, caught signals,
 * SIGPIPE and SIGXFSZ at default, empty signal mask. Exported for tests;
 * exec() calls it.
 */
export function prepareForExec(keepFds: readonly number[]): void {
  for (const fd of [0, 1, 2]) {
    if (!isOpen(fd)) continue;
    setCloexec(fd, false);
    const saved = startFlags[fd];
    if (saved !== null && saved !== undefined) {
      const cur = getStatusFlags(fd);
      if ((cur & O_NONBLOCK) !== (saved & O_NONBLOCK)) setStatusFlags(fd, (cur & ~O_NONBLOCK) | (saved & O_NONBLOCK));
    }
  }
  for (const fd of keepFds) setCloexec(fd, false);
  resetCaughtSignals();
  signalFn(SIGPIPE, null);
  signalFn(SIGXFSZ, null);
  clearSignalMask();
}

export interface ExecOptions {
  /** fds the next program gets besides 0, 1, 2 (their close-on-exec flag is cleared). */
  keepFds?: readonly number[];
  /** An explicit environment (KEY=VALUE words); default: the live environ, byte-exact. */
  env?: readonly (Buffer | string)[];
}

/**
 * Replace this process with argv[0] (PATH search as execvp when it has no
 * slash). Only returns by throwing a SysError; ENOENT means "not found".
 */
export function exec(argv: readonly (Buffer | string)[], opts: ExecOptions = {}): never {
  if (argv.length === 0) throw new Error('exec: empty argv');
  prepareForExec(opts.keepFds ?? []);
  const { array, keep } = pointerArray(argv);
  const file = keep[0]!;
  const hasSlash = file.indexOf(0x2f) !== -1;
  if (opts.env) {
    const envp = pointerArray(opts.env);
    (hasSlash ? execveFn : execvpeFn)(file, array, envp.array);
    const err = SysError.last(`exec ${argv[0]!.toString()}`);
    void envp.keep;
    throw err;
  }
  (hasSlash ? execvFn : execvpFn)(file, array);
  const err = SysError.last(`exec ${argv[0]!.toString()}`);
  void keep;
  throw err;
}
