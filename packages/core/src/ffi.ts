// The one place that loads libc through koffi. Every other core module
// declares the functions it needs from `libc` and checks results with
// `check`/`checkBig`, which turn a -1 return into a SysError carrying errno.
import koffi from 'koffi';
import { SysError } from './errors.js';

export { koffi };
export const libc = koffi.load('libc.so.6');

/** Throw a SysError for `what` when a libc call returned a negative value. */
export function check(ret: number, what: string): number {
  if (ret < 0) throw SysError.last(what);
  return ret;
}

/** Same for calls declared to return intptr_t/long (koffi gives number or bigint). */
export function checkLong(ret: number | bigint, what: string): number {
  const n = typeof ret === 'bigint' ? Number(ret) : ret;
  if (n < 0) throw SysError.last(what);
  return n;
}

/** The address of a Buffer's bytes, for building pointer arrays. */
export function addressOf(buf: Buffer): bigint {
  return koffi.address(buf);
}

const syscallFn = libc.func('long syscall(long nr, ...)');

type SyscallName = 'setresuid' | 'setresgid' | 'setgroups' | 'pidfd_open' | 'pidfd_send_signal';
const SYSCALLS: Record<string, Record<SyscallName, number>> = {
  x64: { setgroups: 116, setresuid: 117, setresgid: 119, pidfd_send_signal: 424, pidfd_open: 434 },
  arm64: { setgroups: 159, setresuid: 147, setresgid: 149, pidfd_send_signal: 424, pidfd_open: 434 },
};

/**
 * A raw system call on the calling thread, bypassing glibc's wrappers (which
 * for set*id broadcast to every thread). Arguments are passed as C longs or
 * pointers; returns the raw result (>= 0) or throws SysError.
 */
export function rawSyscall(name: SyscallName, what: string, ...args: (number | bigint | Buffer | null)[]): number {
  const table = SYSCALLS[process.arch];
  if (!table) throw new SysError(what, 38 /* ENOSYS */);
  const variadic: unknown[] = [];
  for (const a of args) {
    if (a === null || Buffer.isBuffer(a)) variadic.push('void *', a);
    else variadic.push('long', a);
  }
  return checkLong(syscallFn(table[name], ...variadic) as number | bigint, what);
}
