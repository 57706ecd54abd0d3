// TUN/TAP devices through /dev/net/tun (notes/node-syscalls.md §7).
//
// A device is created (or attached to, if it exists and the caller may) by
// TUNSETIFF on a fresh /dev/net/tun fd. A non-persistent device disappears
// when its last fd closes; a persistent one stays until TUNSETPERSIST 0.
// Multiqueue: one fd per queue, each opened and TUNSETIFF'd with the same
// name and IFF_MULTI_QUEUE. All fds are O_CLOEXEC.
import { libc, check } from './ffi.js';
import { open, closeQuietly, O_RDWR } from './fd.js';
import { checkIfName, IFNAMSIZ } from './ifname.js';
import { UsageError } from './errors.js';

export const TUN_PATH = '/dev/net/tun';

export const IFF_TUN = 0x0001;
export const IFF_TAP = 0x0002;
export const IFF_NAPI = 0x0010;
export const IFF_NAPI_FRAGS = 0x0020;
export const IFF_NO_CARRIER = 0x0040;
export const IFF_MULTI_QUEUE = 0x0100;
export const IFF_ATTACH_QUEUE = 0x0200;
export const IFF_DETACH_QUEUE = 0x0400;
export const IFF_PERSIST = 0x0800;
export const IFF_NO_PI = 0x1000;
export const IFF_ONE_QUEUE = 0x2000;
export const IFF_VNET_HDR = 0x4000;
export const IFF_TUN_EXCL = 0x8000;
/** In TUNGETIFF's answer only: no socket filter attached (same bit as IFF_NO_PI). */
export const IFF_NOFILTER = 0x1000;

export const TUNSETIFF = 0x400454ca;
export const TUNSETPERSIST = 0x400454cb;
export const TUNSETOWNER = 0x400454cc;
export const TUNSETGROUP = 0x400454ce;
export const TUNGETFEATURES = 0x800454cf;
export const TUNGETIFF = 0x800454d2;
export const TUNGETVNETHDRSZ = 0x800454d7;
export const TUNSETVNETHDRSZ = 0x400454d8;
export const TUNSETQUEUE = 0x400454d9;

/** sizeof(struct ifreq): name[16] at 0, short flags at 16, padding to 40. */
const IFREQ_SIZE = 40;

const ioctlFn = libc.func('int ioctl(int fd, unsigned long req, ...)');

function ioctlPtr(fd: number, req: number, buf: Buffer, what: string): number {
  return check(ioctlFn(fd, req, 'void *', buf) as number, what);
}

function ioctlVal(fd: number, req: number, value: number, what: string): number {
  return check(ioctlFn(fd, req, 'unsigned long', value) as number, what);
}

function ifreq(name: string, flags: number): Buffer {
  const b = Buffer.alloc(IFREQ_SIZE);
  b.write(name, 0, IFNAMSIZ - 1, 'utf8');
  b.writeUInt16LE(flags & 0xffff, 16);
  return b;
}

function ifreqName(b: Buffer): string {
  const end = b.indexOf(0);
  return b.toString('utf8', 0, end < 0 || end > IFNAMSIZ ? IFNAMSIZ : end);
}

/** Open /dev/net/tun O_RDWR|O_CLOEXEC. */
export function openTunDevice(): number {
  return open(TUN_PATH, O_RDWR);
}

/**
 * TUNSETIFF: create or attach device `name` ("" or a pattern such as
 * "tap%d": the kernel picks) with IFF_* flags. Returns the device's name as
 * the kernel chose it. A non-empty name is checked first (UsageError).
 */
export function tunSetIff(fd: number, name: string, flags: number): string {
  if (name !== '') checkIfName(name, 'tun/tap device');
  const req = ifreq(name, flags);
  ioctlPtr(fd, TUNSETIFF, req, `create tun/tap device ${name || '(kernel-named)'}`);
  return ifreqName(req);
}

/**
 * TUNGETIFF: the attached device's name and IFF_* flags (EBADFD, errno 77, on
 * an fd not attached to a device). Mind the kernel's extra bits: 0x1000 is
 * IFF_NOFILTER ("no socket filter attached", same value as IFF_NO_PI), so it
 * is set for a pi-on device too, and IFF_DETACH_QUEUE marks a detached queue.
 * Use IFF_TUN/IFF_TAP/IFF_VNET_HDR/IFF_MULTI_QUEUE/IFF_PERSIST from it;
 * keep your own record of IFF_NO_PI.
 */
export function tunGetIff(fd: number): { name: string; flags: number } {
  const req = Buffer.alloc(IFREQ_SIZE);
  ioctlPtr(fd, TUNGETIFF, req, `get tun/tap device of fd ${fd}`);
  return { name: ifreqName(req), flags: req.readUInt16LE(16) };
}

/** TUNGETFEATURES: the IFF_* flags this kernel's tun driver supports. */
export function tunGetFeatures(fd: number): number {
  const out = Buffer.alloc(4);
  ioctlPtr(fd, TUNGETFEATURES, out, 'get tun features');
  return out.readUInt32LE(0);
}

/** TUNSETPERSIST: keep the device after its last fd closes (true) or not. */
export function tunSetPersist(fd: number, on: boolean): void {
  ioctlVal(fd, TUNSETPERSIST, on ? 1 : 0, `${on ? 'set' : 'clear'} tun/tap persist`);
}

function checkId(id: number, what: string): void {
  if (!Number.isInteger(id) || id < 0 || id >= 0xffffffff) throw new UsageError(`${what}: bad id ${id}`);
}

/**
 * TUNSETOWNER: the uid that may attach to the device without CAP_NET_ADMIN.
 * The kernel cannot unset it again (-1 is EINVAL); set 0 to leave it to root.
 */
export function tunSetOwner(fd: number, uid: number): void {
  checkId(uid, 'tun/tap owner');
  ioctlVal(fd, TUNSETOWNER, uid, `set tun/tap owner to ${uid}`);
}

/** TUNSETGROUP: the gid whose members may attach without CAP_NET_ADMIN (cannot be unset either). */
export function tunSetGroup(fd: number, gid: number): void {
  checkId(gid, 'tun/tap group');
  ioctlVal(fd, TUNSETGROUP, gid, `set tun/tap group to ${gid}`);
}

/** TUNSETVNETHDRSZ: the virtio-net header size (>= 10, e.g. 10 or 12; EINVAL below). */
export function tunSetVnetHdrSz(fd: number, size: number): void {
  const b = Buffer.alloc(4);
  b.writeInt32LE(size, 0);
  ioctlPtr(fd, TUNSETVNETHDRSZ, b, `set vnet header size ${size}`);
}

/** TUNGETVNETHDRSZ: the virtio-net header size. */
export function tunGetVnetHdrSz(fd: number): number {
  const b = Buffer.alloc(4);
  ioctlPtr(fd, TUNGETVNETHDRSZ, b, 'get vnet header size');
  return b.readInt32LE(0);
}

/** TUNSETQUEUE: attach (true) or detach (false) this queue of a multiqueue device. */
export function tunSetQueue(fd: number, attach: boolean): void {
  ioctlPtr(fd, TUNSETQUEUE, ifreq('', attach ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE), `${attach ? 'attach' : 'detach'} tun/tap queue`);
}

export interface TunOptions {
  /** 'tap' (ethernet frames) or 'tun' (IP packets). Default 'tap'. */
  type?: 'tap' | 'tun';
  /** Device name or pattern ("tap%d"); default: the kernel picks (tap0, tun0, ...). */
  name?: string;
  /** Number of queues (fds); > 1 sets IFF_MULTI_QUEUE. Default 1. */
  queues?: number;
  /** Set IFF_MULTI_QUEUE even for one queue (so more can attach later). */
  multiQueue?: boolean;
  /** IFF_VNET_HDR. */
  vnetHdr?: boolean;
  /** Keep the packet-information header (omit IFF_NO_PI). Default false. */
  packetInfo?: boolean;
  /**
   * Only create, never attach to an existing device (IFF_TUN_EXCL on the
   * first queue: EBUSY if the name exists). A privileged creator must set
   * it, or a caller naming another user's persistent tap would get it.
   */
  exclusive?: boolean;
}

export interface TunDevice {
  name: string;
  /** One fd per queue, each O_CLOEXEC. */
  fds: number[];
  /** The IFF_* flags passed to TUNSETIFF. */
  flags: number;
}

/** The TUNSETIFF flags for opts. */
export function tunFlags(opts: TunOptions = {}): number {
  const queues = opts.queues ?? 1;
  let flags = (opts.type ?? 'tap') === 'tun' ? IFF_TUN : IFF_TAP;
  if (!opts.packetInfo) flags |= IFF_NO_PI;
  if (opts.vnetHdr) flags |= IFF_VNET_HDR;
  if (queues > 1 || opts.multiQueue) flags |= IFF_MULTI_QUEUE;
  return flags;
}

/**
 * Create (or, unless exclusive, attach to) a tun/tap device: open /dev/net/tun once per queue
 * and TUNSETIFF each fd. On failure every fd opened so far is closed.
 */
export function createTun(opts: TunOptions = {}): TunDevice {
  const queues = opts.queues ?? 1;
  if (!Number.isInteger(queues) || queues < 1 || queues > 256) throw new UsageError(`bad queue count: ${queues}`);
  if (opts.type !== undefined && opts.type !== 'tap' && opts.type !== 'tun') throw new UsageError(`bad device type: ${String(opts.type)}`);
  const flags = tunFlags(opts);
  const fds: number[] = [];
  try {
    let name = opts.name ?? '';
    for (let i = 0; i < queues; i++) {
      const fd = openTunDevice();
      fds.push(fd);
      name = tunSetIff(fd, name, i === 0 && opts.exclusive ? flags | IFF_TUN_EXCL : flags);
    }
    return { name, fds, flags };
  } catch (e) {
    for (const fd of fds) closeQuietly(fd);
    throw e;
  }
}
