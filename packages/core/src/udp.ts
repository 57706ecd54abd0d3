// IPv4 UDP sockets with IP_PKTINFO: which interface a datagram came in on
// and which local address it was for, and sending out of a given interface
// from a given local address, to the limited broadcast address too
// (SO_BROADCAST). What a DHCP server needs without CAP_NET_RAW (KubeVirt's
// technique): no raw or packet socket, no SO_BINDTODEVICE.
import { libc, check, addressOf } from './ffi.js';
import { SysError } from './errors.js';
import { parseIp, formatIp } from './rtnl/ip.js';
import { closeQuietly } from './fd.js';

const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0x80000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SO_BROADCAST = 6;
const SOL_IP = 0;
const IP_PKTINFO = 8;
const MSG_TRUNC = 0x20;
const CMSG_HDR = 16;
const PKTINFO_LEN = 12;
const PKTINFO_SPACE = CMSG_HDR + 16; // CMSG_SPACE(12) on 64-bit

const socketFn = libc.func('int socket(int domain, int type, int protocol)');
const bindFn = libc.func('int bind(int fd, void *addr, uint32_t len)');
const setsockoptFn = libc.func('int setsockopt(int fd, int level, int name, void *val, uint32_t len)');
const sendmsgFn = libc.func('intptr_t sendmsg(int fd, void *msg, int flags)');
const recvmsgFn = libc.func('intptr_t recvmsg(int fd, void *msg, int flags)');

function sockaddrIn(addr: string, port: number): Buffer {
  const ip = parseIp(addr);
  if (!ip || ip.bytes.length !== 4) throw new SysError(`address ${JSON.stringify(addr)}`, 22 /* EINVAL */, 'not an IPv4 address');
  const b = Buffer.alloc(16);
  b.writeUInt16LE(AF_INET, 0);
  b.writeUInt16BE(port, 2);
  ip.bytes.copy(b, 4);
  return b;
}

function intOpt(fd: number, level: number, name: number, what: string): void {
  const v = Buffer.alloc(4);
  v.writeInt32LE(1);
  check(setsockoptFn(fd, level, name, v, 4) as number, what);
}

/** A UDP socket bound to 0.0.0.0:port with IP_PKTINFO and SO_BROADCAST, close-on-exec. */
export function udpPktinfoSocket(port: number): number {
  const fd = check(socketFn(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0) as number, 'create UDP socket');
  try {
    intOpt(fd, SOL_SOCKET, SO_REUSEADDR, 'set SO_REUSEADDR');
    intOpt(fd, SOL_SOCKET, SO_BROADCAST, 'set SO_BROADCAST');
    intOpt(fd, SOL_IP, IP_PKTINFO, 'set IP_PKTINFO');
    check(bindFn(fd, sockaddrIn('0.0.0.0', port), 16) as number, `bind UDP port ${port}`);
    return fd;
  } catch (e) {
    closeQuietly(fd);
    throw e;
  }
}

export interface Datagram {
  data: Buffer;
  /** The datagram was longer than the buffer (and cut). */
  truncated: boolean;
  from: { addr: string; port: number };
  /** IP_PKTINFO: the interface it came in on, and the local address the kernel would answer from. */
  ifindex: number;
  local: string;
}

// One buffer holds the msghdr, its iovec, address and control data, and is
// read after the call: a buffer only the kernel reads (an iovec on its own)
// can be dead to the optimizing compiler before the call, and one of 64
// bytes or less lives on V8's heap, where a collection may move it.
const MSG = 0;
const IOV = 56;
const NAME = 72;
const CONTROL = 88;
const CONTROL_LEN = PKTINFO_SPACE * 2;

function msghdr(data: Buffer): Buffer {
  const m = Buffer.alloc(CONTROL + CONTROL_LEN);
  const base = addressOf(m);
  m.writeBigUInt64LE(addressOf(data), IOV);
  m.writeBigUInt64LE(BigInt(data.length), IOV + 8);
  m.writeBigUInt64LE(base + BigInt(NAME), MSG);
  m.writeUInt32LE(16, MSG + 8);
  m.writeBigUInt64LE(base + BigInt(IOV), MSG + 16);
  m.writeBigUInt64LE(1n, MSG + 24);
  m.writeBigUInt64LE(base + BigInt(CONTROL), MSG + 32);
  m.writeBigUInt64LE(BigInt(CONTROL_LEN), MSG + 40);
  return m;
}

/** recvmsg one datagram (at most max bytes kept); null if it carried no IP_PKTINFO. */
export function recvPktinfo(fd: number, max: number): Datagram | null {
  const data = Buffer.alloc(max);
  const m = msghdr(data);
  let n: number;
  for (;;) {
    n = Number(recvmsgFn(fd, m, 0) as number | bigint);
    if (n >= 0) break;
    const e = SysError.last(`receive on fd ${fd}`);
    if (e.code !== 'EINTR') throw e;
  }
  const controllen = Math.min(CONTROL_LEN, Number(m.readBigUInt64LE(MSG + 40)));
  const control = m.subarray(CONTROL, CONTROL + controllen);
  for (let off = 0; off + CMSG_HDR <= controllen; ) {
    const len = Number(control.readBigUInt64LE(off));
    if (len < CMSG_HDR || off + len > controllen) break;
    if (control.readInt32LE(off + 8) === SOL_IP && control.readInt32LE(off + 12) === IP_PKTINFO && len >= CMSG_HDR + PKTINFO_LEN) {
      return {
        data: data.subarray(0, Math.min(n, max)),
        truncated: (m.readInt32LE(MSG + 48) & MSG_TRUNC) !== 0,
        from: { addr: formatIp(m.subarray(NAME + 4, NAME + 8)), port: m.readUInt16BE(NAME + 2) },
        ifindex: control.readInt32LE(off + CMSG_HDR),
        local: formatIp(control.subarray(off + CMSG_HDR + 4, off + CMSG_HDR + 8)),
      };
    }
    off += (len + 7) & ~7;
  }
  return null;
}

/** sendmsg data to addr:port out of interface ifindex, from local address src (IP_PKTINFO). */
export function sendPktinfo(fd: number, data: Buffer, to: { addr: string; port: number }, ifindex: number, src: string): number {
  // A buffer of its own, off V8's heap (over 64 bytes): data may be a slice of a shared pool.
  const out = Buffer.alloc(Math.max(data.length, 65));
  data.copy(out);
  const m = msghdr(out.subarray(0, data.length));
  sockaddrIn(to.addr, to.port).copy(m, NAME);
  m.writeBigUInt64LE(BigInt(PKTINFO_SPACE), MSG + 40);
  m.writeBigUInt64LE(BigInt(CMSG_HDR + PKTINFO_LEN), CONTROL);
  m.writeInt32LE(SOL_IP, CONTROL + 8);
  m.writeInt32LE(IP_PKTINFO, CONTROL + 12);
  m.writeInt32LE(ifindex, CONTROL + CMSG_HDR);
  sockaddrIn(src, 0).copy(m, CONTROL + CMSG_HDR + 4, 4, 8); // ipi_spec_dst: the source address
  for (;;) {
    const r = Number(sendmsgFn(fd, m, 0x4000 /* MSG_NOSIGNAL */) as number | bigint);
    if (r >= 0) {
      m.readInt32LE(MSG + 48); // m (and out, through it) reachable until the call has returned
      return Math.min(r, out.length);
    }
    const e = SysError.last(`send to ${to.addr}:${to.port}`);
    if (e.code !== 'EINTR') throw e;
  }
}
