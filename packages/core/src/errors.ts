// Error types shared by core and every program. A SysError carries the errno
// name and strerror text; the runtime turns each kind into its exit code.
import { constants } from 'node:os';
import koffi from 'koffi';

let errnoNames: Map<number, string> | undefined;
/** errno value -> name, built on first use (most runs never fail). */
function errnoNameTable(): Map<number, string> {
  if (errnoNames) return errnoNames;
  errnoNames = new Map<number, string>();
  for (const [name, num] of Object.entries(constants.errno)) {
    if (!errnoNames.has(num)) errnoNames.set(num, name);
  }
  // Linux errnos Node's table lacks.
  for (const [num, name] of [[77, 'EBADFD']] as const) if (!errnoNames.has(num)) errnoNames.set(num, name);
  return errnoNames;
}

let strerrorFn: ((n: number) => string) | undefined;
/** strerror(3) text for an errno value. */
export function strerror(errno: number): string {
  strerrorFn ??= koffi.load('libc.so.6').func('const char *strerror(int errnum)') as (n: number) => string;
  return strerrorFn(errno);
}

/** The symbolic name of an errno value: 2 -> "ENOENT". */
export function errnoName(errno: number): string {
  return errnoNameTable().get(errno) ?? `E${errno}`;
}

/** The errno value for a name: "ENOENT" -> 2. */
export function errnoValue(name: string): number | undefined {
  return (constants.errno as Record<string, number>)[name];
}

/** A failed system call: `what` failed with errno. Exit code 111. */
export class SysError extends Error {
  readonly errno: number;
  readonly code: string;
  readonly what: string;
  /** Extra text from the kernel (netlink extended ack), if any. */
  readonly detail: string | undefined;
  constructor(what: string, errno: number, detail?: string) {
    const text = `${what}: ${strerror(errno)} (${errnoName(errno)})${detail ? `: ${detail}` : ''}`;
    super(text);
    this.name = 'SysError';
    this.errno = errno;
    this.code = errnoName(errno);
    this.what = what;
    this.detail = detail;
  }
  /** A SysError from the errno left by the last libc call. */
  static last(what: string): SysError {
    return new SysError(what, koffi.errno());
  }
}

/** Wrong usage: bad option, bad value, missing argument. Exit code 100. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Bad input that is not a usage error: bad config, bad message, bad env. Exit code 100. */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

/** An access decision said no (peer-check, ACLs, quotas). Exit code 1. */
export class DeniedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeniedError';
  }
}
