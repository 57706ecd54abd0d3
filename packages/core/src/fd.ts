// File descriptors: open/close/dup, fd flags, close-on-exec, close_range.
// Every fd core opens for itself is close-on-exec.
import { readdirSync } from 'node:fs';
import { libc, check } from './ffi.js';
import { SysError } from './errors.js';

export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_NOFOLLOW = 0o400000;
export const O_DIRECTORY = 0o200000;
export const O_CLOEXEC = 0o2000000;
export const O_NONBLOCK = 0o4000;
export const O_PATH = 0o10000000;

const F_GETFD = 1;
const F_SETFD = 2;
const F_GETFL = 3;
const F_SETFL = 4;
const FD_CLOEXEC = 1;
const CLOSE_RANGE_CLOEXEC = 4;

const openFn = libc.func('int open(const char *path, int flags, ...)');
const closeFn = libc.func('int close(int fd)');
const dupFcntl = libc.func('int fcntl(int fd, int cmd, ...)');
const dup3Fn = libc.func('int dup3(int oldfd, int newfd, int flags)');
const closeRangeFn = libc.func('int close_range(unsigned int first, unsigned int last, int flags)');
const flockFn = libc.func('int flock(int fd, int op)');

/** open(2); O_CLOEXEC is always added. */
export function open(path: string, flags: number, mode = 0): number {
  return check(openFn(path, flags | O_CLOEXEC, 'unsigned int', mode) as number, `open ${path}`);
}

export function close(fd: number): void {
  check(closeFn(fd) as number, `close fd ${fd}`);
}

/** Close and ignore errors (for cleanup paths). */
export function closeQuietly(fd: number): void {
  if (fd >= 0) closeFn(fd);
}

function fcntl(fd: number, cmd: number, what: string, arg?: number): number {
  const r = arg === undefined ? dupFcntl(fd, cmd) : dupFcntl(fd, cmd, 'int', arg);
  return check(r as number, what);
}

/** dup3(2): oldfd onto newfd; the result is close-on-exec only if asked. */
export function dup3(oldfd: number, newfd: number, cloexec: boolean): number {
  if (oldfd === newfd) {
    setCloexec(newfd, cloexec);
    return newfd;
  }
  return check(dup3Fn(oldfd, newfd, cloexec ? O_CLOEXEC : 0) as number, `dup fd ${oldfd} to ${newfd}`);
}

/** dup2(2) semantics: the copy at newfd is not close-on-exec. */
export function dup2(oldfd: number, newfd: number): number {
  return dup3(oldfd, newfd, false);
}

/** A close-on-exec duplicate at the lowest free number >= min. */
export function dupCloexec(fd: number, min = 0): number {
  return fcntl(fd, 1030 /* F_DUPFD_CLOEXEC */, `duplicate fd ${fd}`, min);
}

export function isCloexec(fd: number): boolean {
  return (fcntl(fd, F_GETFD, `get flags of fd ${fd}`) & FD_CLOEXEC) !== 0;
}

export function setCloexec(fd: number, on: boolean): void {
  const cur = fcntl(fd, F_GETFD, `get flags of fd ${fd}`);
  const next = on ? cur | FD_CLOEXEC : cur & ~FD_CLOEXEC;
  if (next !== cur) fcntl(fd, F_SETFD, `set flags of fd ${fd}`, next);
}

/** F_GETFL: the open file description's status flags. */
export function getStatusFlags(fd: number): number {
  return fcntl(fd, F_GETFL, `get status flags of fd ${fd}`);
}

export function setStatusFlags(fd: number, flags: number): void {
  fcntl(fd, F_SETFL, `set status flags of fd ${fd}`, flags);
}

export function setNonblocking(fd: number, on: boolean): void {
  const cur = getStatusFlags(fd);
  const next = on ? cur | O_NONBLOCK : cur & ~O_NONBLOCK;
  if (next !== cur) setStatusFlags(fd, next);
}

/** Is fd open? (F_GETFD succeeds.) */
export function isOpen(fd: number): boolean {
  try {
    fcntl(fd, F_GETFD, 'probe');
    return true;
  } catch (e) {
    if (e instanceof SysError && e.code === 'EBADF') return false;
    throw e;
  }
}

/** close_range(2) with CLOSE_RANGE_CLOEXEC: mark first..last close-on-exec. */
export function cloexecRange(first: number, last = 0xffffffff): void {
  check(closeRangeFn(first, last, CLOSE_RANGE_CLOEXEC) as number, `mark fds ${first}.. close-on-exec`);
}

/** close_range(2): close first..last. */
export function closeRange(first: number, last = 0xffffffff): void {
  check(closeRangeFn(first, last, 0) as number, `close fds ${first}..`);
}

/** The fds this process has open, from /proc/self/fd (ascending). */
export function listOpenFds(): number[] {
  // readdirSync opens the directory itself; its fd is closed before return,
  // so filter out fds that are no longer open.
  return readdirSync('/proc/self/fd')
    .map(Number)
    .filter((n) => Number.isInteger(n) && isOpen(n))
    .sort((a, b) => a - b);
}

const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;

/** The longest nap between two tries for a lock. */
const LOCK_NAP_MAX_MS = 50;

/**
 * Take an exclusive flock(2) on fd, waiting at most timeoutMs (polling, so
 * the wait never blocks past it). Throws SysError ETIMEDOUT when it expires.
 * The naps grow from 1 ms to LOCK_NAP_MAX_MS, so many waiters do not take
 * the CPU from the process holding the lock.
 */
export function lockExclusive(fd: number, timeoutMs: number, what: string): void {
  const deadline = Date.now() + timeoutMs;
  const nap = new Int32Array(new SharedArrayBuffer(4));
  for (let ms = 1; !tryLock(fd, what); ms = Math.min(ms * 2, LOCK_NAP_MAX_MS)) {
    Atomics.wait(nap, 0, 0, Math.min(ms, napLeft(deadline, timeoutMs, what)));
  }
}

/**
 * lockExclusive for a caller that must not block its thread (a link inside
 * the resident server): between tries it awaits nap(ms), which resolves to
 * false once a bound of the caller's own (the connection's deadline) has
 * passed. Throws SysError ETIMEDOUT when either expires.
 */
export async function lockExclusiveAsync(fd: number, timeoutMs: number, what: string, nap: (ms: number) => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let ms = 1; !tryLock(fd, what); ms = Math.min(ms * 2, LOCK_NAP_MAX_MS)) {
    if (!(await nap(Math.min(ms, napLeft(deadline, timeoutMs, what))))) throw new SysError(what, 110 /* ETIMEDOUT */, 'still locked at the connection\'s deadline');
  }
}

/** One non-blocking try: true if fd is now locked, false if someone else holds it. */
function tryLock(fd: number, what: string): boolean {
  if ((flockFn(fd, LOCK_EX | LOCK_NB) as number) === 0) return true;
  const e = SysError.last(what);
  if (e.code !== 'EWOULDBLOCK' && e.code !== 'EAGAIN' && e.code !== 'EINTR') throw e;
  return false;
}

/** The ms left before deadline; ETIMEDOUT once none is. */
function napLeft(deadline: number, timeoutMs: number, what: string): number {
  const left = deadline - Date.now();
  if (left <= 0) throw new SysError(what, 110 /* ETIMEDOUT */, `still locked after ${timeoutMs} ms`);
  return left;
}

export function unlock(fd: number): void {
  flockFn(fd, LOCK_UN);
}
