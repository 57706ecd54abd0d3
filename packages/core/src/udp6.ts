// IPv6 UDP sockets with IPV6_RECVPKTINFO: which interface a datagram came
// in on and which address it was sent to, multicast groups joined per
// interface (IPV6_JOIN_GROUP, no privilege), and sending out of a given
// interface (IPV6_PKTINFO) to a link-local address. What a DHCPv6 server
// needs without CAP_NET_RAW: no raw or packet socket, no SO_BINDTODEVICE.
import { libc, check } from './ffi.js';
import { SysError } from './errors.js';
import { parseIp, formatIp } from './rtnl/ip.js';
import { closeQuietly } from './fd.js';
import { msghdr, receive, cmsgs, send, setOpt, NAME } from './udpmsg.js';

const AF_INET6 = 10;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0x800;
const SOCK_CLOEXEC = 0x80000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SOL_IPV6 = 41;
const IPV6_JOIN_GROUP = 20;
const IPV6_LEAVE_GROUP = 21;
const IPV6_V6ONLY = 26;
const IPV6_RECVPKTINFO = 49;
const IPV6_PKTINFO = 50;
const SOCKADDR_IN6 = 28;
const PKTINFO6_LEN = 20;

const socketFn = libc.func('int socket(int domain, int type, int protocol)');
const bindFn = libc.func('int bind(int fd, void *addr, uint32_t len)');

function addr6(addr: string, what: string): Buffer {
  const ip = parseIp(addr);
  if (!ip || ip.bytes.length !== 16) throw new SysError(`${what} ${JSON.stringify(addr)}`, 22 /* EINVAL */, 'not an IPv6 address');
  return ip.bytes;
}

function sockaddrIn6(addr: string, port: number, scope: number): Buffer {
  const b = Buffer.alloc(SOCKADDR_IN6);
  b.writeUInt16LE(AF_INET6, 0);
  b.writeUInt16BE(port, 2);
  addr6(addr, 'address').copy(b, 8);
  b.writeUInt32LE(scope >>> 0, 24);
  return b;
}

/** A non-blocking IPv6-only UDP socket bound to [::]:port with IPV6_RECVPKTINFO, close-on-exec. */
export function udp6PktinfoSocket(port: number): number {
  const fd = check(socketFn(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0) as number, 'create UDP/IPv6 socket');
  try {
    setOpt(fd, SOL_SOCKET, SO_REUSEADDR, 'set SO_REUSEADDR');
    setOpt(fd, SOL_IPV6, IPV6_V6ONLY, 'set IPV6_V6ONLY');
    setOpt(fd, SOL_IPV6, IPV6_RECVPKTINFO, 'set IPV6_RECVPKTINFO');
    check(bindFn(fd, sockaddrIn6('::', port, 0), SOCKADDR_IN6) as number, `bind UDP/IPv6 port ${port}`);
    return fd;
  } catch (e) {
    closeQuietly(fd);
    throw e;
  }
}

function membership(fd: number, name: number, group: string, ifindex: number, what: string): void {
  const mreq = Buffer.alloc(20); // struct ipv6_mreq: the group, then the interface index
  addr6(group, 'group').copy(mreq, 0);
  mreq.writeInt32LE(ifindex, 16);
  setOpt(fd, SOL_IPV6, name, `${what} ${group} on interface ${ifindex}`, mreq);
}

/** Join the multicast group on interface ifindex (IPV6_JOIN_GROUP: no privilege needed). */
export function joinGroup6(fd: number, group: string, ifindex: number): void {
  membership(fd, IPV6_JOIN_GROUP, group, ifindex, 'join');
}

/** Leave it again (the kernel drops a membership by itself when the interface goes). */
export function leaveGroup6(fd: number, group: string, ifindex: number): void {
  membership(fd, IPV6_LEAVE_GROUP, group, ifindex, 'leave');
}

export interface Datagram6 {
  data: Buffer;
  /** The datagram was longer than the buffer (and cut). */
  truncated: boolean;
  /** The sender: address, port and scope (the interface index of a link-local sender). */
  from: { addr: string; port: number; scope: number };
  /** IPV6_PKTINFO: the interface it came in on, and the address it was sent to. */
  ifindex: number;
  to: string;
}

/**
 * recvmsg one datagram (at most max bytes kept) without waiting: undefined
 * when none is queued, null if it carried no IPV6_PKTINFO.
 */
export function recvPktinfo6(fd: number, max: number): Datagram6 | null | undefined {
  const data = Buffer.alloc(max);
  const m = msghdr(data, SOCKADDR_IN6);
  const got = receive(fd, m, data, true);
  if (!got) return undefined;
  for (const c of cmsgs(m)) {
    if (c.level === SOL_IPV6 && c.type === IPV6_PKTINFO && c.data.length >= PKTINFO6_LEN) {
      return {
        data: got.data,
        truncated: got.truncated,
        from: { addr: formatIp(m.subarray(NAME + 8, NAME + 24)), port: m.readUInt16BE(NAME + 2), scope: m.readUInt32LE(NAME + 24) },
        ifindex: c.data.readInt32LE(16),
        to: formatIp(c.data.subarray(0, 16)),
      };
    }
  }
  return null;
}

/** sendmsg data to [addr%ifindex]:port out of interface ifindex (IPV6_PKTINFO), the source chosen by the kernel. */
export function sendPktinfo6(fd: number, data: Buffer, to: { addr: string; port: number }, ifindex: number): number {
  const pktinfo = Buffer.alloc(PKTINFO6_LEN); // ipi6_addr :: (the kernel picks the source), ipi6_ifindex
  pktinfo.writeInt32LE(ifindex, 16);
  return send(fd, data, sockaddrIn6(to.addr, to.port, ifindex), { level: SOL_IPV6, type: IPV6_PKTINFO, data: pktinfo }, `send to [${to.addr}%${ifindex}]:${to.port}`);
}
