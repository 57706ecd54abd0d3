// A netlink socket (NETLINK_ROUTE, or NETLINK_NETFILTER for nftables):
// requests with ACK, dumps, and kernel errors with errno and the
// extended-ack message. The socket belongs to the network
// namespace of the thread that opened it, for its whole life.
import { libc, check } from '../ffi.js';
import { SysError } from '../errors.js';
import { closeQuietly } from '../fd.js';
import { parseAttrs, cstr } from './attrs.js';

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0x80000;
const NETLINK_ROUTE = 0;
/** nfnetlink: nftables' objects (rtnl/nftables.ts). */
export const NETLINK_NETFILTER = 12;
const SOL_NETLINK = 270;
const NETLINK_EXT_ACK = 11;
const NETLINK_GET_STRICT_CHK = 12;
export const NLM_F_REQUEST = 0x1;
export const NLM_F_ACK = 0x4;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_DUMP = 0x300;
const NLM_F_ACK_TLVS = 0x200;
const NLM_F_CAPPED = 0x100;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLMSGERR_ATTR_MSG = 1;
const MSG_DONTWAIT = 0x40;
/** Multicast groups to bind (nl_groups bits): RTMGRP_LINK carries RTM_NEWLINK/RTM_DELLINK. */
export const RTMGRP_LINK = 0x1;

const socketFn = libc.func('int socket(int domain, int type, int protocol)');
const bindFn = libc.func('int bind(int fd, void *addr, uint32_t len)');
const setsockoptFn = libc.func('int setsockopt(int fd, int level, int name, void *val, uint32_t len)');
const sendFn = libc.func('intptr_t send(int fd, void *buf, size_t len, int flags)');
const recvFn = libc.func('intptr_t recv(int fd, void *buf, size_t len, int flags)');

export interface NlMessage {
  type: number;
  flags: number;
  /** The message body after the 16-byte header. */
  body: Buffer;
}

export class Netlink {
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private readonly buf = Buffer.alloc(65536);

  private constructor(readonly fd: number) {}

  /**
   * Open a route socket in the calling thread's network namespace; with
   * groups (RTMGRP_* bits), one that receives those notifications (read them
   * with notifications(); keep requests on another socket, whose replies
   * they would otherwise interleave with). protocol: NETLINK_NETFILTER for
   * an nfnetlink socket.
   */
  static open(groups = 0, protocol = NETLINK_ROUTE): Netlink {
    const fd = check(socketFn(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol) as number, 'open netlink socket');
    try {
      const addr = Buffer.alloc(12);
      addr.writeUInt16LE(AF_NETLINK, 0);
      addr.writeUInt32LE(groups >>> 0, 8);
      check(bindFn(fd, addr, 12) as number, 'bind netlink socket');
      const one = Buffer.alloc(4);
      one.writeInt32LE(1);
      setsockoptFn(fd, SOL_NETLINK, NETLINK_EXT_ACK, one, 4); // best effort: older kernels lack it
      setsockoptFn(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, one, 4);
    } catch (e) {
      closeQuietly(fd);
      throw e;
    }
    return new Netlink(fd);
  }

  close(): void {
    closeQuietly(this.fd);
  }

  private send(type: number, flags: number, body: Buffer, what: string): number {
    const seq = ++this.seq;
    const hdr = Buffer.alloc(16);
    hdr.writeUInt32LE(16 + body.length, 0);
    hdr.writeUInt16LE(type, 4);
    hdr.writeUInt16LE(flags | NLM_F_REQUEST, 6);
    hdr.writeUInt32LE(seq, 8);
    const msg = Buffer.concat([hdr, body]);
    for (;;) {
      const r = Number(sendFn(this.fd, msg, msg.length, 0));
      if (r >= 0) return seq;
      const e = SysError.last(what);
      if (e.code !== 'EINTR') throw e;
    }
  }

  private *receive(seq: number, what: string): Generator<NlMessage> {
    for (;;) {
      let n: number;
      for (;;) {
        n = Number(recvFn(this.fd, this.buf, this.buf.length, 0));
        if (n >= 0) break;
        const e = SysError.last(what);
        if (e.code !== 'EINTR') throw e;
      }
      let off = 0;
      while (off + 16 <= n) {
        const len = this.buf.readUInt32LE(off);
        const type = this.buf.readUInt16LE(off + 4);
        const flags = this.buf.readUInt16LE(off + 6);
        const mseq = this.buf.readUInt32LE(off + 8);
        if (len < 16 || off + len > n) throw new SysError(what, 71 /* EPROTO */, 'truncated netlink message');
        const body = Buffer.from(this.buf.subarray(off + 16, off + len));
        off += (len + 3) & ~3;
        if (mseq !== seq) continue; // a late reply to an earlier request
        if (type === NLMSG_DONE) return;
        if (type === NLMSG_ERROR) {
          const err = body.readInt32LE(0);
          if (err === 0) return;
          let detail: string | undefined;
          if (flags & NLM_F_ACK_TLVS) {
            // nlmsgerr: error, then the request's header (whole request unless capped), then TLVs.
            const echoed = flags & NLM_F_CAPPED ? 16 : body.readUInt32LE(4);
            detail = cstr(parseAttrs(body.subarray(4 + ((echoed + 3) & ~3))).get(NLMSGERR_ATTR_MSG));
          }
          throw new SysError(what, -err, detail);
        }
        yield { type, flags, body };
      }
    }
  }

  /**
   * The notifications queued on a socket opened with groups, without
   * waiting. overflow: the kernel dropped some (ENOBUFS), so whoever reads
   * them must resynchronise from a dump.
   */
  notifications(): { messages: NlMessage[]; overflow: boolean } {
    const messages: NlMessage[] = [];
    for (;;) {
      const n = Number(recvFn(this.fd, this.buf, this.buf.length, MSG_DONTWAIT));
      if (n < 0) {
        const e = SysError.last('read rtnetlink notifications');
        if (e.code === 'EINTR') continue;
        if (e.code === 'EAGAIN' || e.code === 'EWOULDBLOCK') return { messages, overflow: false };
        if (e.code === 'ENOBUFS') return { messages, overflow: true };
        throw e;
      }
      let off = 0;
      while (off + 16 <= n) {
        const len = this.buf.readUInt32LE(off);
        if (len < 16 || off + len > n) break;
        messages.push({ type: this.buf.readUInt16LE(off + 4), flags: this.buf.readUInt16LE(off + 6), body: Buffer.from(this.buf.subarray(off + 16, off + len)) });
        off += (len + 3) & ~3;
      }
    }
  }

  /** A request that must be acknowledged; throws the kernel's error. */
  request(type: number, flags: number, body: Buffer, what: string): void {
    const seq = this.send(type, flags | NLM_F_ACK, body, what);
    for (const _ of this.receive(seq, what)) void _;
  }

  /** A dump: every reply message until NLMSG_DONE. */
  dump(type: number, body: Buffer, what: string): NlMessage[] {
    const seq = this.send(type, NLM_F_DUMP, body, what);
    return [...this.receive(seq, what)];
  }

  /** A get of one object: its reply. */
  get(type: number, body: Buffer, what: string): NlMessage {
    // With NLM_F_ACK the kernel follows the reply with an ack, which ends the read.
    const seq = this.send(type, NLM_F_ACK, body, what);
    const replies = [...this.receive(seq, what)];
    if (!replies[0]) throw new SysError(what, 61 /* ENODATA */);
    return replies[0];
  }
}

/** Open a socket, run fn, close it. */
export function withNetlink<T>(fn: (nl: Netlink) => T): T {
  const nl = Netlink.open();
  try {
    return fn(nl);
  } finally {
    nl.close();
  }
}
