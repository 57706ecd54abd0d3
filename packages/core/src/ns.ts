// Namespaces: unshare, setns, opening namespace files, nsfs checks
// (notes/node-syscalls.md §8).
//
// PER THREAD: unshare and setns move only the calling (main) thread; Node's
// other threads stay where they were, and libuv threadpool threads started
// before the switch run later async work (fs.promises, dns.lookup) in the OLD
// namespace. Only synchronous calls between a namespace change and exec.
// From multi-threaded Node, CLONE_NEWUSER (unshare or setns) fails with
// EINVAL and setns(CLONE_NEWNS) needs unshare(CLONE_FS) first.
//
// Refusing a wrong fd: checkNamespace/setns throw an InputError (exit code
// 100, "bad input") when a caller-supplied fd or path is not a namespace or
// not of the expected type, BEFORE any setns. It is the caller's input that
// is wrong, not a system call that failed, and the message says what the fd
// is ("fd 5 is a mnt namespace, not a net namespace") instead of the kernel's
// bare EINVAL. Genuine system-call failures stay SysErrors (exit 111).
import { fstatSync } from 'node:fs';
import { libc, check } from './ffi.js';
import { InputError } from './errors.js';
import { open, closeQuietly, setCloexec, getStatusFlags, O_RDONLY, O_PATH } from './fd.js';

export const CLONE_NEWTIME = 0x80;
export const CLONE_FS = 0x200;
export const CLONE_NEWNS = 0x20000;
export const CLONE_NEWCGROUP = 0x2000000;
export const CLONE_NEWUTS = 0x4000000;
export const CLONE_NEWIPC = 0x8000000;
export const CLONE_NEWUSER = 0x10000000;
export const CLONE_NEWPID = 0x20000000;
export const CLONE_NEWNET = 0x40000000;

export const NSFS_MAGIC = 0x6e736673;
export const NS_GET_USERNS = 0xb701;
export const NS_GET_PARENT = 0xb702;
export const NS_GET_NSTYPE = 0xb703;
export const NS_GET_OWNER_UID = 0xb704;

const NS_TYPE_NAMES: Record<number, string> = {
  [CLONE_NEWTIME]: 'time',
  [CLONE_NEWNS]: 'mnt',
  [CLONE_NEWCGROUP]: 'cgroup',
  [CLONE_NEWUTS]: 'uts',
  [CLONE_NEWIPC]: 'ipc',
  [CLONE_NEWUSER]: 'user',
  [CLONE_NEWPID]: 'pid',
  [CLONE_NEWNET]: 'net',
};

/** The /proc/PID/ns name of a CLONE_NEW* type: CLONE_NEWNET -> "net". */
export function nsTypeName(nstype: number): string {
  return NS_TYPE_NAMES[nstype] ?? `type 0x${nstype.toString(16)}`;
}

const unshareFn = libc.func('int unshare(int flags)');
const setnsFn = libc.func('int setns(int fd, int nstype)');
const fstatfsFn = libc.func('int fstatfs(int fd, void *buf)');
const ioctlFn = libc.func('int ioctl(int fd, unsigned long req, ...)');

/** unshare(2) for the calling thread. */
export function unshare(flags: number): void {
  check(unshareFn(flags) as number, `unshare ${describeFlags(flags)}`);
}

/** unshare(CLONE_NEWNET): a new, empty network namespace for the calling thread. */
export function unshareNet(): void {
  unshare(CLONE_NEWNET);
}

function describeFlags(flags: number): string {
  const names = Object.entries(NS_TYPE_NAMES)
    .filter(([bit]) => flags & Number(bit))
    .map(([, n]) => n);
  return names.length ? `${names.join('+')} namespace` : `flags 0x${flags.toString(16)}`;
}

/** Is fd a file on nsfs (fstatfs f_type == NSFS_MAGIC)? Works on O_PATH fds too. */
export function isNamespace(fd: number): boolean {
  const buf = Buffer.alloc(128); // struct statfs: 120 bytes on LP64; f_type (long) at 0
  check(fstatfsFn(fd, buf) as number, `fstatfs fd ${fd}`);
  return Number(buf.readBigInt64LE(0) & 0xffffffffn) === NSFS_MAGIC;
}

/** The CLONE_NEW* type of a namespace fd (ioctl NS_GET_NSTYPE; ENOTTY for a non-namespace fd). */
export function nsType(fd: number): number {
  return check(ioctlFn(fd, NS_GET_NSTYPE) as number, `get namespace type of fd ${fd}`);
}

/**
 * Throw an InputError unless fd is a namespace of type nstype (0: any type).
 * `what` names the fd in the message (default "fd N").
 */
export function checkNamespace(fd: number, nstype: number, what = `fd ${fd}`): void {
  if (!isNamespace(fd)) throw new InputError(`${what} is not a namespace`);
  // An O_PATH fd of a namespace passes fstatfs but no ioctl or setns takes
  // it (EBADF): it is the wrong kind of fd, the caller's input, like any other.
  if (getStatusFlags(fd) & O_PATH) throw new InputError(`${what} is an O_PATH fd of a namespace: open it O_RDONLY`);
  if (nstype === 0) return;
  const t = nsType(fd);
  if (t !== nstype) throw new InputError(`${what} is a ${nsTypeName(t)} namespace, not a ${nsTypeName(nstype)} namespace`);
}

/**
 * setns(2) for the calling thread, after checking that fd is a namespace of
 * type nstype (InputError otherwise, and setns is not called). nstype 0
 * accepts any namespace type (the kernel's meaning of 0).
 */
export function setns(fd: number, nstype = CLONE_NEWNET): void {
  checkNamespace(fd, nstype);
  check(setnsFn(fd, nstype) as number, `enter ${nstype ? nsTypeName(nstype) : 'the'} namespace of fd ${fd}`);
}

/**
 * Open a namespace file from a trusted path (e.g. /proc/thread-self/ns/net)
 * with O_RDONLY|O_CLOEXEC. With nstype, also check the type (InputError).
 */
export function openNamespace(path: string, nstype?: number): number {
  const fd = open(path, O_RDONLY);
  if (nstype !== undefined) {
    try {
      checkNamespace(fd, nstype, path);
    } catch (e) {
      closeQuietly(fd);
      throw e;
    }
  }
  return fd;
}

/**
 * Open a namespace file from a caller-supplied path without ever opening
 * anything else with privilege: O_PATH|O_CLOEXEC (no open side effects on
 * FIFOs, devices, ...), check the fd is on nsfs and of type nstype
 * (InputError otherwise), then reopen the same file O_RDONLY|O_CLOEXEC
 * through /proc/self/fd (an O_PATH fd cannot be passed to setns or ioctl).
 * Symlinks are followed: /proc/PID/ns/net is one.
 */
export function openNamespaceUntrusted(path: string, nstype = CLONE_NEWNET): number {
  const pathFd = open(path, O_PATH);
  try {
    if (!isNamespace(pathFd)) throw new InputError(`${path} is not a namespace`);
    const fd = open(`/proc/self/fd/${pathFd}`, O_RDONLY);
    try {
      checkNamespace(fd, nstype, path);
    } catch (e) {
      closeQuietly(fd);
      throw e;
    }
    return fd;
  } finally {
    closeQuietly(pathFd);
  }
}

/** The calling thread's network namespace, O_RDONLY|O_CLOEXEC (/proc/thread-self/ns/net). */
export function currentNetns(): number {
  return open('/proc/thread-self/ns/net', O_RDONLY);
}

/**
 * fn with this thread in network namespace fd (none: where it is), and back
 * in its own namespace afterwards, whatever fn did. Synchronous: nothing
 * else runs on the thread while it is away.
 */
export function inNetns<T>(fd: number | undefined, fn: () => T): T {
  if (fd === undefined) return fn();
  const home = currentNetns();
  try {
    setns(fd, CLONE_NEWNET);
    try {
      return fn();
    } finally {
      setns(home, CLONE_NEWNET);
    }
  } finally {
    closeQuietly(home);
  }
}

/**
 * The user namespace that owns namespace fd (ioctl NS_GET_USERNS): a new fd,
 * close-on-exec. EPERM if that user namespace is outside the caller's.
 */
export function userNsOf(fd: number): number {
  const ufd = check(ioctlFn(fd, NS_GET_USERNS) as number, `get the owning user namespace of fd ${fd}`);
  try {
    setCloexec(ufd, true); // the kernel already sets it; make sure
  } catch (e) {
    closeQuietly(ufd);
    throw e;
  }
  return ufd;
}

/** The uid that created user namespace userNsFd (ioctl NS_GET_OWNER_UID; EINVAL if not a userns). */
export function userNsOwnerUid(userNsFd: number): number {
  const out = Buffer.alloc(4);
  check(ioctlFn(userNsFd, NS_GET_OWNER_UID, 'void *', out) as number, `get the owner of user namespace fd ${userNsFd}`);
  return out.readUInt32LE(0);
}

/** The owner uid of the user namespace that owns namespace fd (0 for the initial one). */
export function nsOwnerUid(fd: number): number {
  const ufd = userNsOf(fd);
  try {
    return userNsOwnerUid(ufd);
  } finally {
    closeQuietly(ufd);
  }
}

/** A namespace's identity: nsfs device and inode (what `ls -L -i` and `lsns` show). */
export interface NsId {
  dev: bigint;
  ino: bigint;
}

/** The identity of the namespace open at fd (fstat st_dev + st_ino). */
export function nsId(fd: number): NsId {
  const st = fstatSync(fd, { bigint: true });
  return { dev: st.dev, ino: st.ino };
}

/** Are two namespace fds the same namespace? */
export function sameNamespace(a: number, b: number): boolean {
  const x = nsId(a);
  const y = nsId(b);
  return x.dev === y.dev && x.ino === y.ino;
}
