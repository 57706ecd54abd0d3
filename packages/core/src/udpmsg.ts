// The msghdr that udp.ts (IPv4) and udp6.ts (IPv6) receive and send with:
// one buffer for the msghdr, its iovec, the peer's address and the control
// data, and the control messages walked with bounds checked. Internal to
// core (not exported by index.ts).
import { libc, addressOf, check } from './ffi.js';
import { SysError } from './errors.js';

const recvmsgFn = libc.func('intptr_t recvmsg(int fd, void *msg, int flags)');
const sendmsgFn = libc.func('intptr_t sendmsg(int fd, void *msg, int flags)');
const setsockoptFn = libc.func('int setsockopt(int fd, int level, int name, void *val, uint32_t len)');

/** setsockopt: an int option to 1, or the bytes given. */
export function setOpt(fd: number, level: number, name: number, what: string, value?: Buffer): void {
  let v = value;
  if (!v) {
    v = Buffer.alloc(4);
    v.writeInt32LE(1);
  }
  check(setsockoptFn(fd, level, name, v, v.length) as number, what);
}

const MSG_TRUNC = 0x20;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
export const CMSG_HDR = 16;

// One buffer holds the msghdr, its iovec, address and control data, and is
// read after the call: a buffer only the kernel reads (an iovec on its own)
// can be dead to the optimizing compiler before the call, and one of 64
// bytes or less lives on V8's heap, where a collection may move it.
export const MSG = 0;
const IOV = 56;
/** The peer's address: room for a sockaddr_in6 (28 bytes). */
export const NAME = 72;
const CONTROL = 104;
/** Room for two control messages of up to 24 bytes of data each (in6_pktinfo is 20). */
const CONTROL_LEN = 2 * (CMSG_HDR + 24);

/** A msghdr over data, with nameLen bytes of address room and the control area. */
export function msghdr(data: Buffer, nameLen: number): Buffer {
  const m = Buffer.alloc(CONTROL + CONTROL_LEN);
  const base = addressOf(m);
  m.writeBigUInt64LE(addressOf(data), IOV);
  m.writeBigUInt64LE(BigInt(data.length), IOV + 8);
  m.writeBigUInt64LE(base + BigInt(NAME), MSG);
  m.writeUInt32LE(nameLen, MSG + 8);
  m.writeBigUInt64LE(base + BigInt(IOV), MSG + 16);
  m.writeBigUInt64LE(1n, MSG + 24);
  m.writeBigUInt64LE(base + BigInt(CONTROL), MSG + 32);
  m.writeBigUInt64LE(BigInt(CONTROL_LEN), MSG + 40);
  return m;
}

/**
 * recvmsg into m (made over data); the bytes kept and whether the datagram
 * was cut. With nonblocking, null when nothing is queued (EAGAIN).
 */
export function receive(fd: number, m: Buffer, data: Buffer, nonblocking: boolean): { data: Buffer; truncated: boolean } | null {
  for (;;) {
    const n = Number(recvmsgFn(fd, m, nonblocking ? MSG_DONTWAIT : 0) as number | bigint);
    if (n >= 0) return { data: data.subarray(0, Math.min(n, data.length)), truncated: (m.readInt32LE(MSG + 48) & MSG_TRUNC) !== 0 };
    const e = SysError.last(`receive on fd ${fd}`);
    if (e.code === 'EINTR') continue;
    if (nonblocking && (e.code === 'EAGAIN' || e.code === 'EWOULDBLOCK')) return null;
    throw e;
  }
}

export interface Cmsg {
  level: number;
  type: number;
  data: Buffer;
}

/** The control messages the kernel wrote into m, each inside the area. */
export function cmsgs(m: Buffer): Cmsg[] {
  const controllen = Math.min(CONTROL_LEN, Number(m.readBigUInt64LE(MSG + 40)));
  const control = m.subarray(CONTROL, CONTROL + controllen);
  const out: Cmsg[] = [];
  for (let off = 0; off + CMSG_HDR <= controllen; ) {
    const len = Number(control.readBigUInt64LE(off));
    if (len < CMSG_HDR || off + len > controllen) break;
    out.push({ level: control.readInt32LE(off + 8), type: control.readInt32LE(off + 12), data: Buffer.from(control.subarray(off + CMSG_HDR, off + len)) });
    off += (len + 7) & ~7;
  }
  return out;
}

/** sendmsg data to the address name with one control message; the bytes sent. */
export function send(fd: number, data: Buffer, name: Buffer, c: Cmsg, what: string): number {
  // A buffer of its own, off V8's heap (over 64 bytes): data may be a slice of a shared pool.
  const out = Buffer.alloc(Math.max(data.length, 65));
  data.copy(out);
  const m = msghdr(out.subarray(0, data.length), name.length);
  name.copy(m, NAME);
  if (c.data.length > 24) throw new RangeError('control message too long');
  m.writeBigUInt64LE(BigInt(CMSG_HDR + ((c.data.length + 7) & ~7)), MSG + 40);
  m.writeBigUInt64LE(BigInt(CMSG_HDR + c.data.length), CONTROL);
  m.writeInt32LE(c.level, CONTROL + 8);
  m.writeInt32LE(c.type, CONTROL + 12);
  c.data.copy(m, CONTROL + CMSG_HDR);
  for (;;) {
    const r = Number(sendmsgFn(fd, m, MSG_NOSIGNAL) as number | bigint);
    if (r >= 0) {
      m.readInt32LE(MSG + 48); // m (and out, through it) reachable until the call has returned
      return Math.min(r, out.length);
    }
    const e = SysError.last(what);
    if (e.code !== 'EINTR') throw e;
  }
}
