// Unix sockets: socketpair, sendmsg/recvmsg with SCM_RIGHTS and
// SCM_CREDENTIALS, peer credentials (SO_PEERCRED, SO_PEERGROUPS,
// SO_PEERPIDFD), poll with a timeout. Every fd created or received here is
// close-on-exec (SOCK_CLOEXEC, MSG_CMSG_CLOEXEC).
import { libc, check, addressOf } from './ffi.js';
import { SysError } from './errors.js';
import { closeQuietly } from './fd.js';

export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_SEQPACKET = 5;
const SOCK_CLOEXEC = 0x80000;
const SOL_SOCKET = 1;
const SO_TYPE = 3;
const SO_PASSCRED = 16;
const SO_PEERCRED = 17;
const SO_DOMAIN = 39;
const SO_PEERGROUPS = 59;
const SO_PEERPIDFD = 77;
const SCM_RIGHTS = 1;
const SCM_CREDENTIALS = 2;
export const MSG_PEEK = 0x2;
export const MSG_CTRUNC = 0x8;
export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;
export const MSG_CMSG_CLOEXEC = 0x40000000;
/** Linux SCM_MAX_FD. */
export const MAX_FDS_PER_MESSAGE = 253;

const socketpairFn = libc.func('int socketpair(int domain, int type, int protocol, _Out_ int *sv)');
const sendmsgFn = libc.func('intptr_t sendmsg(int fd, void *msg, int flags)');
const recvmsgFn = libc.func('intptr_t recvmsg(int fd, void *msg, int flags)');
const getsockoptFn = libc.func('int getsockopt(int fd, int level, int name, void *val, _Inout_ uint32_t *len)');
const setsockoptFn = libc.func('int setsockopt(int fd, int level, int name, void *val, uint32_t len)');
const getsocknameFn = libc.func('int getsockname(int fd, void *addr, _Inout_ uint32_t *len)');
const getpeernameFn = libc.func('int getpeername(int fd, void *addr, _Inout_ uint32_t *len)');
const pollFn = libc.func('int poll(void *fds, unsigned long nfds, int timeout)');
const socketFn = libc.func('int socket(int domain, int type, int protocol)');
const bindFn = libc.func('int bind(int fd, void *addr, uint32_t len)');
const listenFn = libc.func('int listen(int fd, int backlog)');
const accept4Fn = libc.func('int accept4(int fd, void *addr, void *len, int flags)');
const connectFn = libc.func('int connect(int fd, void *addr, uint32_t len)');
const SOCK_NONBLOCK = 0x800;

export interface Ucred {
  pid: number;
  uid: number;
  gid: number;
}

/** socketpair(AF_UNIX, type|SOCK_CLOEXEC). */
export function socketpair(type = SOCK_STREAM): [number, number] {
  const sv = [0, 0];
  check(socketpairFn(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) as number, 'create socketpair');
  return [sv[0]!, sv[1]!];
}

function getIntOpt(fd: number, name: number, what: string): number {
  const val = Buffer.alloc(4);
  const len = [4];
  check(getsockoptFn(fd, SOL_SOCKET, name, val, len) as number, what);
  return val.readInt32LE(0);
}

/** Is fd a unix-domain socket? (false for non-sockets; EBADF throws.) */
export function isUnixSocket(fd: number): boolean {
  try {
    return getIntOpt(fd, SO_DOMAIN, `inspect fd ${fd}`) === AF_UNIX;
  } catch (e) {
    if (e instanceof SysError && e.code === 'ENOTSOCK') return false;
    throw e;
  }
}

/** SO_ACCEPTCONN: is this socket listening? */
export function isListening(fd: number): boolean {
  return getIntOpt(fd, 30 /* SO_ACCEPTCONN */, `inspect socket ${fd}`) !== 0;
}

/** The socket type (SOCK_STREAM, ...). */
export function socketType(fd: number): number {
  return getIntOpt(fd, SO_TYPE, `get type of socket ${fd}`);
}

/** SO_PEERCRED: who was on the other end at connect() (socketpair: its creator). */
export function peerCred(fd: number): Ucred {
  const val = Buffer.alloc(12);
  const len = [12];
  check(getsockoptFn(fd, SOL_SOCKET, SO_PEERCRED, val, len) as number, `get peer credentials of fd ${fd}`);
  return { pid: val.readInt32LE(0), uid: val.readUInt32LE(4), gid: val.readUInt32LE(8) };
}

/** SO_PEERGROUPS: the peer's supplementary groups at connect(). */
export function peerGroups(fd: number): number[] {
  let size = 64 * 4;
  for (;;) {
    const val = Buffer.alloc(size);
    const len = [size];
    const r = getsockoptFn(fd, SOL_SOCKET, SO_PEERGROUPS, val, len) as number;
    if (r < 0) {
      const e = SysError.last(`get peer groups of fd ${fd}`);
      if (e.code === 'ERANGE' && len[0]! > size) {
        size = len[0]!;
        continue;
      }
      throw e;
    }
    const out: number[] = [];
    for (let off = 0; off + 4 <= len[0]!; off += 4) out.push(val.readUInt32LE(off));
    return out;
  }
}

/** SO_PEERPIDFD: a pidfd for the peer (close-on-exec), or null where the kernel lacks it. */
export function peerPidfd(fd: number): number | null {
  const val = Buffer.alloc(4);
  const len = [4];
  const r = getsockoptFn(fd, SOL_SOCKET, SO_PEERPIDFD, val, len) as number;
  if (r < 0) {
    const e = SysError.last(`get peer pidfd of fd ${fd}`);
    if (e.code === 'ENOPROTOOPT') return null;
    throw e;
  }
  return val.readInt32LE(0);
}

/** SO_PASSCRED: receive the sender's credentials with each message. */
export function setPassCred(fd: number, on: boolean): void {
  const val = Buffer.alloc(4);
  val.writeInt32LE(on ? 1 : 0);
  check(setsockoptFn(fd, SOL_SOCKET, SO_PASSCRED, val, 4) as number, `set SO_PASSCRED on fd ${fd}`);
}

function sockaddrLen(fn: typeof getsocknameFn, fd: number, what: string): number {
  const addr = Buffer.alloc(112);
  const len = [112];
  check(fn(fd, addr, len) as number, what);
  return len[0]!;
}

/**
 * Neither end has an address: a socketpair (or two unbound sockets), where
 * SO_PEERCRED names the creator rather than the peer.
 */
export function isUnnamedPair(fd: number): boolean {
  return sockaddrLen(getsocknameFn, fd, `get socket name of fd ${fd}`) <= 2 && sockaddrLen(getpeernameFn, fd, `get peer name of fd ${fd}`) <= 2;
}

const align8 = (n: number): number => (n + 7) & ~7;
const CMSG_HDR = 16;
const cmsgSpace = (n: number): number => CMSG_HDR + align8(n);

/** sendmsg with fds as one SCM_RIGHTS message; returns bytes sent. MSG_NOSIGNAL always. */
export function sendmsg(fd: number, data: Buffer, fds: readonly number[] = [], flags = 0): number {
  if (fds.length > MAX_FDS_PER_MESSAGE) throw new SysError('send fds', 22 /* EINVAL */, `at most ${MAX_FDS_PER_MESSAGE} fds per message`);
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(addressOf(data), 0);
  iov.writeBigUInt64LE(BigInt(data.length), 8);
  const msg = Buffer.alloc(56);
  msg.writeBigUInt64LE(addressOf(iov), 16);
  msg.writeBigUInt64LE(1n, 24);
  let control: Buffer | null = null;
  if (fds.length > 0) {
    control = Buffer.alloc(cmsgSpace(4 * fds.length));
    control.writeBigUInt64LE(BigInt(CMSG_HDR + 4 * fds.length), 0);
    control.writeInt32LE(SOL_SOCKET, 8);
    control.writeInt32LE(SCM_RIGHTS, 12);
    fds.forEach((f, i) => control!.writeInt32LE(f, CMSG_HDR + 4 * i));
    msg.writeBigUInt64LE(addressOf(control), 32);
    msg.writeBigUInt64LE(BigInt(control.length), 40);
  }
  for (;;) {
    const r = sendmsgFn(fd, msg, flags | MSG_NOSIGNAL) as number | bigint;
    if (Number(r) < 0) {
      const e = SysError.last(`send on fd ${fd}`);
      if (e.code === 'EINTR') continue;
      throw e;
    }
    void [data, iov, control];
    return Number(r);
  }
}

/** Send all of data; fds ride on the first byte. */
export function sendAll(fd: number, data: Buffer, fds: readonly number[] = []): void {
  let off = sendmsg(fd, data, fds);
  while (off < data.length) off += sendmsg(fd, data.subarray(off));
}

export interface Received {
  data: Buffer;
  fds: number[];
  /** The sender's credentials, when SO_PASSCRED is set on the receiving socket. */
  creds: Ucred | null;
  /** The control data was truncated (MSG_CTRUNC): fds were lost. */
  ctrunc: boolean;
}

/**
 * recvmsg with room for maxFds fds and one SCM_CREDENTIALS; received fds are
 * close-on-exec. Does not judge the result: callers check ctrunc and counts.
 */
export function recvmsg(fd: number, maxData: number, maxFds: number, flags = 0): Received {
  const data = Buffer.alloc(maxData);
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(addressOf(data), 0);
  iov.writeBigUInt64LE(BigInt(maxData), 8);
  const control = Buffer.alloc(cmsgSpace(4 * Math.max(1, maxFds)) + cmsgSpace(12));
  const msg = Buffer.alloc(56);
  msg.writeBigUInt64LE(addressOf(iov), 16);
  msg.writeBigUInt64LE(1n, 24);
  msg.writeBigUInt64LE(addressOf(control), 32);
  msg.writeBigUInt64LE(BigInt(control.length), 40);
  let n: number;
  for (;;) {
    const r = recvmsgFn(fd, msg, flags | MSG_CMSG_CLOEXEC) as number | bigint;
    n = Number(r);
    if (n >= 0) break;
    const e = SysError.last(`receive on fd ${fd}`);
    if (e.code === 'EINTR') continue;
    throw e;
  }
  const controllen = Number(msg.readBigUInt64LE(40));
  const msgFlags = msg.readInt32LE(48);
  const fds: number[] = [];
  let creds: Ucred | null = null;
  for (let off = 0; off + CMSG_HDR <= controllen; ) {
    const len = Number(control.readBigUInt64LE(off));
    if (len < CMSG_HDR || off + len > controllen) break;
    const level = control.readInt32LE(off + 8);
    const type = control.readInt32LE(off + 12);
    if (level === SOL_SOCKET && type === SCM_RIGHTS) {
      for (let p = off + CMSG_HDR; p + 4 <= off + len; p += 4) fds.push(control.readInt32LE(p));
    } else if (level === SOL_SOCKET && type === SCM_CREDENTIALS && len >= CMSG_HDR + 12) {
      creds = { pid: control.readInt32LE(off + 16), uid: control.readUInt32LE(off + 20), gid: control.readUInt32LE(off + 24) };
    }
    off += align8(len);
  }
  void iov;
  return { data: data.subarray(0, n), fds, creds, ctrunc: (msgFlags & MSG_CTRUNC) !== 0 };
}

/** Close every fd in list, ignoring errors. */
export function closeAll(fds: readonly number[]): void {
  for (const f of fds) closeQuietly(f);
}

const POLLIN = 0x1;
const POLLOUT = 0x4;

/**
 * Wait until fd is readable (or writable) or timeoutMs passes (-1: forever).
 * Returns false on timeout. Hang-up and errors count as ready: the next
 * read reports them.
 */
export function waitFd(fd: number, timeoutMs: number, forWrite = false): boolean {
  const pfd = Buffer.alloc(8);
  pfd.writeInt32LE(fd, 0);
  pfd.writeInt16LE(forWrite ? POLLOUT : POLLIN, 4);
  const deadline = timeoutMs < 0 ? Infinity : Date.now() + timeoutMs;
  for (;;) {
    const left = deadline === Infinity ? -1 : Math.max(0, deadline - Date.now());
    const r = pollFn(pfd, 1, left) as number;
    if (r < 0) {
      const e = SysError.last(`poll fd ${fd}`);
      if (e.code === 'EINTR') continue;
      throw e;
    }
    if (r === 0) return false;
    if (pfd.readInt16LE(6) & 0x20 /* POLLNVAL */) throw new SysError(`poll fd ${fd}`, 9 /* EBADF */);
    return true;
  }
}


/** A sockaddr_un for path (at most 107 bytes). */
function sockaddrUn(path: string): Buffer {
  const p = Buffer.from(path);
  if (p.length === 0 || p.length > 107 || p.includes(0)) throw new SysError(`socket path ${JSON.stringify(path)}`, 36 /* ENAMETOOLONG */);
  const addr = Buffer.alloc(110);
  addr.writeUInt16LE(AF_UNIX, 0);
  p.copy(addr, 2);
  return addr;
}

/** A new unix stream socket, close-on-exec (and non-blocking if asked). */
export function unixSocket(nonblocking = false): number {
  return check(socketFn(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0) as number, 'create unix socket');
}

/** Bind fd to path and listen. */
export function bindListen(fd: number, path: string, backlog: number): void {
  const addr = sockaddrUn(path);
  check(bindFn(fd, addr, 2 + Buffer.byteLength(path) + 1) as number, `bind ${path}`);
  check(listenFn(fd, backlog) as number, `listen on ${path}`);
}

/** Connect fd to the socket at path. */
export function connectUnix(fd: number, path: string): void {
  const addr = sockaddrUn(path);
  check(connectFn(fd, addr, 2 + Buffer.byteLength(path) + 1) as number, `connect to ${path}`);
}

/** accept4 a connection (close-on-exec, blocking); null when none is pending (EAGAIN). */
export function acceptConn(fd: number): number | null {
  for (;;) {
    const r = accept4Fn(fd, null, null, SOCK_CLOEXEC) as number;
    if (r >= 0) return r;
    const e = SysError.last(`accept on fd ${fd}`);
    if (e.code === 'EINTR') continue;
    if (e.code === 'EAGAIN' || e.code === 'EWOULDBLOCK' || e.code === 'ECONNABORTED') return null;
    throw e;
  }
}
