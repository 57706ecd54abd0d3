// IPv4 UDP sockets with IP_PKTINFO: which interface a datagram came in on
// and which local address it was for, and sending out of a given interface
// from a given local address, to the limited broadcast address too
// (SO_BROADCAST). What a DHCP server needs without CAP_NET_RAW (KubeVirt's
// technique): no raw or packet socket, no SO_BINDTODEVICE.
import { libc, check } from './ffi.js';
import { SysError } from './errors.js';
import { parseIp, formatIp } from './rtnl/ip.js';
import { closeQuietly } from './fd.js';
import { msghdr, receive, cmsgs, send, setOpt, NAME } from './udpmsg.js';

const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0x80000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SO_BROADCAST = 6;
const SOL_IP = 0;
const IP_PKTINFO = 8;
const PKTINFO_LEN = 12;

const socketFn = libc.func('int socket(int domain, int type, int protocol)');
const bindFn = libc.func('int bind(int fd, void *addr, uint32_t len)');

function sockaddrIn(addr: string, port: number): Buffer {
  const ip = parseIp(addr);
  if (!ip || ip.bytes.length !== 4) throw new SysError(`address ${JSON.stringify(addr)}`, 22 /* EINVAL */, 'not an IPv4 address');
  const b = Buffer.alloc(16);
  b.writeUInt16LE(AF_INET, 0);
  b.writeUInt16BE(port, 2);
  ip.bytes.copy(b, 4);
  return b;
}

/** A UDP socket bound to 0.0.0.0:port with IP_PKTINFO and SO_BROADCAST, close-on-exec. */
export function udpPktinfoSocket(port: number): number {
  const fd = check(socketFn(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0) as number, 'create UDP socket');
  try {
    setOpt(fd, SOL_SOCKET, SO_REUSEADDR, 'set SO_REUSEADDR');
    setOpt(fd, SOL_SOCKET, SO_BROADCAST, 'set SO_BROADCAST');
    setOpt(fd, SOL_IP, IP_PKTINFO, 'set IP_PKTINFO');
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

/** recvmsg one datagram (at most max bytes kept); null if it carried no IP_PKTINFO. */
export function recvPktinfo(fd: number, max: number): Datagram | null {
  const data = Buffer.alloc(max);
  const m = msghdr(data, 16);
  const got = receive(fd, m, data, false);
  if (!got) return null;
  for (const c of cmsgs(m)) {
    if (c.level === SOL_IP && c.type === IP_PKTINFO && c.data.length >= PKTINFO_LEN) {
      return {
        data: got.data,
        truncated: got.truncated,
        from: { addr: formatIp(m.subarray(NAME + 4, NAME + 8)), port: m.readUInt16BE(NAME + 2) },
        ifindex: c.data.readInt32LE(0),
        local: formatIp(c.data.subarray(4, 8)),
      };
    }
  }
  return null;
}

/** sendmsg data to addr:port out of interface ifindex, from local address src (IP_PKTINFO). */
export function sendPktinfo(fd: number, data: Buffer, to: { addr: string; port: number }, ifindex: number, src: string): number {
  const pktinfo = Buffer.alloc(PKTINFO_LEN);
  pktinfo.writeInt32LE(ifindex, 0);
  sockaddrIn(src, 0).copy(pktinfo, 4, 4, 8); // ipi_spec_dst: the source address
  return send(fd, data, sockaddrIn(to.addr, to.port), { level: SOL_IP, type: IP_PKTINFO, data: pktinfo }, `send to ${to.addr}:${to.port}`);
}
