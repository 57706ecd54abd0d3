// The wire format between fd-send and fd-recv (docs/protocol.md): skalibs'
// unixmessage framing. One message = u32 big-endian payload length, u16
// big-endian fd count, then the payload; the fds ride as one SCM_RIGHTS
// control message on the first byte. The payload is NUL-terminated
// KEY=VALUE strings. Parsing is strict: anything off closes every fd that
// arrived and throws ProtocolError.
//
// Also the one-byte "ancil" mode: exactly one byte (chosen by the caller)
// carrying exactly one fd, as qemu-bridge-helper and skalibs' ancil_send_fd.
import { SysError } from './errors.js';
import { sendAll, recvmsg, closeAll, waitFd, MAX_FDS_PER_MESSAGE, type Ucred } from './socket.js';

export const HEADER_SIZE = 6;
/** Default ceiling for a payload; a larger header is refused before reading. */
export const DEFAULT_MAX_PAYLOAD = 65536;

/** A malformed or unexpected message. Exit code 111 class in programs (EPROTO). */
export class ProtocolError extends SysError {
  constructor(what: string, detail: string, errno = 71 /* EPROTO */) {
    super(what, errno, detail);
    this.name = 'ProtocolError';
  }
}

export interface Message {
  payload: Buffer;
  fds: number[];
  /** The sender's credentials if SO_PASSCRED was set on the socket. */
  creds: Ucred | null;
}

const KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Encode KEY=VALUE pairs as a payload (each entry NUL-terminated). */
export function encodeEnv(vars: readonly (readonly [string, string | Buffer])[]): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of vars) {
    if (!KEY_RE.test(k)) throw new TypeError(`invalid variable name ${JSON.stringify(k)}`);
    const value = Buffer.isBuffer(v) ? v : Buffer.from(v);
    if (value.includes(0)) throw new TypeError(`variable ${k} contains a NUL byte`);
    parts.push(Buffer.from(`${k}=`), value, Buffer.alloc(1));
  }
  return Buffer.concat(parts);
}

/** Decode a payload of NUL-terminated KEY=VALUE strings; strict. */
export function decodeEnv(payload: Buffer): [string, string][] {
  const out: [string, string][] = [];
  if (payload.length === 0) return out;
  if (payload[payload.length - 1] !== 0) throw new ProtocolError('decode message', 'payload is not NUL-terminated');
  let start = 0;
  const seen = new Set<string>();
  for (let i = 0; i < payload.length; i++) {
    if (payload[i] !== 0) continue;
    const entry = payload.subarray(start, i).toString('latin1');
    start = i + 1;
    const eq = entry.indexOf('=');
    const key = eq > 0 ? entry.slice(0, eq) : '';
    if (!KEY_RE.test(key)) throw new ProtocolError('decode message', `bad entry ${JSON.stringify(entry.slice(0, 40))}`);
    if (seen.has(key)) throw new ProtocolError('decode message', `variable ${key} sent twice`);
    seen.add(key);
    out.push([key, Buffer.from(entry.slice(eq + 1), 'latin1').toString('utf8')]);
  }
  return out;
}

/** The 6-byte header for a payload of len bytes carrying nfds fds. */
export function encodeHeader(len: number, nfds: number): Buffer {
  const h = Buffer.alloc(HEADER_SIZE);
  h.writeUInt32BE(len, 0);
  h.writeUInt16BE(nfds, 4);
  return h;
}

/** Send one framed message (MSG_NOSIGNAL; a gone peer is EPIPE). */
export function sendMessage(sock: number, payload: Buffer, fds: readonly number[] = []): void {
  if (fds.length > MAX_FDS_PER_MESSAGE) throw new ProtocolError('send message', `at most ${MAX_FDS_PER_MESSAGE} fds`, 22);
  sendAll(sock, Buffer.concat([encodeHeader(payload.length, fds.length), payload]), fds);
}

/** Wait until fd is readable or timeoutMs passes (-1: forever); false on timeout. */
export type WaitReadable = (fd: number, timeoutMs: number) => boolean | Promise<boolean>;

export interface RecvOptions {
  /** How to wait for data. Default: a blocking poll(2) on this thread. */
  wait?: WaitReadable;
  /** Most fds accepted; more is an error (their fds are closed). Default 253. */
  maxFds?: number;
  /** Largest payload accepted. Default 65536. */
  maxPayload?: number;
  /** Give up after this many ms (-1: wait forever, the default). */
  timeoutMs?: number;
}

/**
 * Receive exactly one framed message, reading no byte past it. Any error
 * (timeout, peer gone, short message, oversized, too many fds, truncated
 * control data, fd count not matching the header) closes every fd that
 * arrived and throws.
 */
export async function recvMessage(sock: number, opts: RecvOptions = {}): Promise<Message> {
  const wait = opts.wait ?? waitFd;
  const maxFds = Math.min(opts.maxFds ?? MAX_FDS_PER_MESSAGE, MAX_FDS_PER_MESSAGE);
  const maxPayload = opts.maxPayload ?? DEFAULT_MAX_PAYLOAD;
  const deadline = opts.timeoutMs === undefined || opts.timeoutMs < 0 ? -1 : Date.now() + opts.timeoutMs;
  const fds: number[] = [];
  let creds: Ucred | null = null;
  const fail = (detail: string, errno?: number): never => {
    closeAll(fds);
    throw new ProtocolError('receive message', detail, errno);
  };
  const readExactly = async (n: number, phase: string, withFds: boolean): Promise<Buffer> => {
    const parts: Buffer[] = [];
    let got = 0;
    while (got < n) {
      const left = deadline < 0 ? -1 : deadline - Date.now();
      if (deadline >= 0 && left <= 0) fail(`timed out waiting for the ${phase}`, 110 /* ETIMEDOUT */);
      if (!(await wait(sock, left))) fail(`timed out waiting for the ${phase}`, 110);
      let r;
      try {
        r = recvmsg(sock, n - got, withFds ? maxFds : 0);
      } catch (e) {
        closeAll(fds);
        throw e;
      }
      fds.push(...r.fds);
      creds ??= r.creds;
      if (r.ctrunc) fail(withFds ? `more than ${maxFds} fds sent` : 'fds sent after the first byte');
      if (!withFds && r.fds.length) fail('fds sent after the first byte');
      if (r.data.length === 0) {
        fail(got === 0 && phase === 'header' ? 'peer closed the connection before sending a message' : `peer closed the connection in the middle of the ${phase}`, got === 0 && phase === 'header' ? 32 /* EPIPE */ : 71);
      }
      parts.push(r.data);
      got += r.data.length;
      withFds = false;
    }
    return Buffer.concat(parts);
  };
  const header = await readExactly(HEADER_SIZE, 'header', true);
  const len = header.readUInt32BE(0);
  const nfds = header.readUInt16BE(4);
  if (nfds > maxFds) fail(`message announces ${nfds} fds, at most ${maxFds} accepted`);
  if (nfds !== fds.length) fail(`message announces ${nfds} fds but carried ${fds.length}`);
  if (len > maxPayload) fail(`message of ${len} bytes exceeds the limit of ${maxPayload}`, 90 /* EMSGSIZE */);
  const payload = len > 0 ? await readExactly(len, 'payload', false) : Buffer.alloc(0);
  return { payload, fds, creds };
}

/** Send one byte with one fd (qemu-bridge-helper / skalibs ancil protocol). */
export function sendByte(sock: number, byte: number, fd: number): void {
  sendAll(sock, Buffer.from([byte]), [fd]);
}

/**
 * Receive one byte with exactly one fd; the byte must equal `expected`.
 * Anything else closes what arrived and throws (EPROTO; EPIPE if the peer
 * closed first).
 */
export async function recvByte(sock: number, expected: number, timeoutMs = -1, wait: WaitReadable = waitFd): Promise<number> {
  if (!(await wait(sock, timeoutMs))) throw new ProtocolError('receive fd', 'timed out', 110);
  const r = recvmsg(sock, 1, 1);
  if (r.data.length === 0) {
    closeAll(r.fds);
    throw new ProtocolError('receive fd', 'peer closed the connection without sending', 32);
  }
  if (r.ctrunc || r.fds.length !== 1 || r.data[0] !== expected) {
    closeAll(r.fds);
    const why = r.ctrunc ? 'more than one fd sent' : r.fds.length !== 1 ? `expected one fd, got ${r.fds.length}` : `expected byte ${expected}, got ${r.data[0]}`;
    throw new ProtocolError('receive fd', why);
  }
  return r.fds[0]!;
}
