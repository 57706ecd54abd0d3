// The calling thread's signal mask (pthread_sigmask(3)): cleared before an
// exec, and filled around a system call that a pending signal would make
// the kernel give up on.
import { libc } from './ffi.js';
import { SysError } from './errors.js';

const pthreadSigmaskFn = libc.func('int pthread_sigmask(int how, const void *set, void *oldset)');
const SIG_SETMASK = 2;
/** glibc's sigset_t. */
const SIGSET_BYTES = 128;

/** Make set the thread's signal mask; the mask it had. */
function setMask(set: Buffer, what: string): Buffer {
  const old = Buffer.alloc(SIGSET_BYTES);
  const err = pthreadSigmaskFn(SIG_SETMASK, set, old) as number;
  if (err !== 0) throw new SysError(what, err);
  return old;
}

/** Block no signal (a program exec'd inherits the mask). */
export function clearSignalMask(): void {
  setMask(Buffer.alloc(SIGSET_BYTES), 'clear signal mask');
}

/**
 * fn with every signal blocked in this thread (but SIGKILL and SIGSTOP,
 * which cannot be, and glibc's own two): one arriving meanwhile stays
 * pending and is delivered when the old mask is back.
 */
export function withSignalsBlocked<T>(fn: () => T): T {
  const old = setMask(Buffer.alloc(SIGSET_BYTES, 0xff), 'block signals');
  try {
    return fn();
  } finally {
    setMask(old, 'restore the signal mask');
  }
}
