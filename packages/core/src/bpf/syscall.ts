// bpf(2): load programs, create and read/write array maps, test-run a
// program on a packet. Every fd the kernel returns for a program or a map is
// close-on-exec (the kernel always sets O_CLOEXEC on them: anon_inode_getfd
// in kernel/bpf/syscall.c). On a failed load the verifier's log text is part
// of the error.
import { libc, checkLong, addressOf } from '../ffi.js';
import { SysError, InputError } from '../errors.js';
import { withSignalsBlocked } from '../sigmask.js';

const syscallFn = libc.func('long syscall(long nr, ...)');
const NR_BPF: Record<string, number> = { x64: 321, arm64: 280 };

const BPF_MAP_CREATE = 0;
const BPF_MAP_LOOKUP_ELEM = 1;
const BPF_MAP_UPDATE_ELEM = 2;
const BPF_PROG_LOAD = 5;
const BPF_PROG_TEST_RUN = 10;

export const BPF_PROG_TYPE_SCHED_CLS = 3;
export const BPF_MAP_TYPE_ARRAY = 2;
/** Map update flags. */
export const BPF_ANY = 0;

/** Helper function numbers (enum bpf_func_id). */
export const BPF_FUNC = {
  map_lookup_elem: 1,
  map_update_elem: 2,
  skb_load_bytes: 26,
} as const;

/** The size of union bpf_attr we pass: the kernel zero-fills what it knows and we do not set. */
const ATTR_SIZE = 128;

function bpf(cmd: number, attr: Buffer, what: string): number {
  const nr = NR_BPF[process.arch];
  if (nr === undefined) throw new SysError(what, 38 /* ENOSYS */);
  for (;;) {
    try {
      return checkLong(syscallFn(nr, 'int', cmd, 'void *', attr, 'unsigned int', attr.length) as number | bigint, what);
    } catch (e) {
      if (!(e instanceof SysError) || e.code !== 'EINTR') throw e;
    }
  }
}

/** A program or map name: up to 15 bytes of [A-Za-z0-9_.]. */
function objName(name: string, what: string): Buffer {
  if (!/^[A-Za-z0-9_.]{0,15}$/.test(name)) throw new InputError(`${what}: bad bpf object name: ${JSON.stringify(name)}`);
  return Buffer.from(name);
}

export interface ProgLoad {
  type: number;
  /** The program, as Asm.assemble() returns it. */
  insns: Buffer;
  /** "GPL" or a GPL-compatible licence ("Dual MIT/GPL"): needed for GPL-only helpers. */
  license: string;
  name?: string;
  /** Bytes for the verifier log on failure; default 1 MiB. */
  logSize?: number;
}

/**
 * BPF_PROG_LOAD: the program's fd. Loaded first without a log (cheap); if
 * the kernel refuses it, loaded again with the verifier's log, whose text
 * (its last lines) goes into the SysError's detail.
 */
export function loadProgram(p: ProgLoad): number {
  if (p.insns.length === 0 || p.insns.length % 8 !== 0) throw new InputError('load bpf program: the program is empty or not whole instructions');
  const what = `load bpf program${p.name ? ` ${p.name}` : ''}`;
  const name = objName(p.name ?? '', what);
  const license = Buffer.from(`${p.license}\0`);
  const attempt = (log: Buffer | null): number => {
    const attr = Buffer.alloc(ATTR_SIZE);
    attr.writeUInt32LE(p.type, 0);
    attr.writeUInt32LE(p.insns.length / 8, 4);
    attr.writeBigUInt64LE(addressOf(p.insns), 8);
    attr.writeBigUInt64LE(addressOf(license), 16);
    if (log) {
      attr.writeUInt32LE(1, 24); // log_level
      attr.writeUInt32LE(log.length, 28);
      attr.writeBigUInt64LE(addressOf(log), 32);
    }
    name.copy(attr, 48);
    // The verifier gives up with EAGAIN whenever a signal is pending (any
    // signal: a child's SIGCHLD, a profiler's SIGPROF), so the load is made
    // with signals blocked: they wait, and are delivered once it returns.
    const fd = withSignalsBlocked(() => bpf(BPF_PROG_LOAD, attr, what));
    void [p.insns, license, log]; // referenced until the call returned
    return fd;
  };
  try {
    return attempt(null);
  } catch (e) {
    if (!(e instanceof SysError) || e.code === 'EPERM' || e.code === 'ENOSYS') throw e;
    const log = Buffer.alloc(p.logSize ?? 1 << 20);
    try {
      const fd = attempt(log);
      return fd; // accepted the second time (should not happen): keep it
    } catch (e2) {
      if (!(e2 instanceof SysError)) throw e2;
      const text = log.subarray(0, Math.max(0, log.indexOf(0))).toString().trim();
      const tail = text.split('\n').slice(-12).join(' | ');
      throw new SysError(what, e2.errno, tail ? `verifier: ${tail}` : undefined);
    }
  }
}

export interface MapCreate {
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags?: number;
  name?: string;
}

/** BPF_MAP_CREATE: the map's fd. */
export function createMap(m: MapCreate): number {
  const what = `create bpf map${m.name ? ` ${m.name}` : ''}`;
  const attr = Buffer.alloc(ATTR_SIZE);
  attr.writeUInt32LE(m.type, 0);
  attr.writeUInt32LE(m.keySize, 4);
  attr.writeUInt32LE(m.valueSize, 8);
  attr.writeUInt32LE(m.maxEntries, 12);
  attr.writeUInt32LE(m.flags ?? 0, 16);
  objName(m.name ?? '', what).copy(attr, 28);
  return bpf(BPF_MAP_CREATE, attr, what);
}

function elemAttr(fd: number, key: Buffer, value: Buffer, flags: number): Buffer {
  const attr = Buffer.alloc(32);
  attr.writeUInt32LE(fd, 0);
  attr.writeBigUInt64LE(addressOf(key), 8);
  attr.writeBigUInt64LE(addressOf(value), 16);
  attr.writeBigUInt64LE(BigInt(flags), 24);
  return attr;
}

/** BPF_MAP_LOOKUP_ELEM: the value at key (valueSize bytes); null if there is none (ENOENT). */
export function mapLookup(fd: number, key: Buffer, valueSize: number): Buffer | null {
  const value = Buffer.alloc(valueSize);
  try {
    bpf(BPF_MAP_LOOKUP_ELEM, elemAttr(fd, key, value, 0), 'look up bpf map element');
  } catch (e) {
    if (e instanceof SysError && e.code === 'ENOENT') return null;
    throw e;
  }
  void key;
  return value;
}

/** BPF_MAP_UPDATE_ELEM. */
export function mapUpdate(fd: number, key: Buffer, value: Buffer, flags = BPF_ANY): void {
  bpf(BPF_MAP_UPDATE_ELEM, elemAttr(fd, key, value, flags), 'update bpf map element');
  void [key, value];
}

/**
 * BPF_PROG_TEST_RUN: run the program once on a packet (for a SCHED_CLS
 * program, an Ethernet frame) and return its result. The kernel builds the
 * skb; nothing is sent anywhere.
 */
export function testRun(progFd: number, packet: Buffer): number {
  return testRunTimed(progFd, packet, 1).retval;
}

/** BPF_PROG_TEST_RUN repeated: the result and the kernel's mean time per run in ns. */
export function testRunTimed(progFd: number, packet: Buffer, repeat: number): { retval: number; ns: number } {
  if (!Number.isInteger(repeat) || repeat < 1) throw new InputError(`test-run bpf program: bad repeat count ${repeat}`);
  const out = Buffer.alloc(Math.max(packet.length, 64) + 256);
  const attr = Buffer.alloc(80);
  attr.writeUInt32LE(progFd, 0); // prog_fd
  // retval @4 (out), data_size_in @8, data_size_out @12, data_in @16, data_out @24, repeat @32, duration @36
  attr.writeUInt32LE(packet.length, 8);
  attr.writeUInt32LE(out.length, 12);
  attr.writeBigUInt64LE(addressOf(packet), 16);
  attr.writeBigUInt64LE(addressOf(out), 24);
  attr.writeUInt32LE(repeat, 32);
  bpf(BPF_PROG_TEST_RUN, attr, 'test-run bpf program');
  void [packet, out];
  return { retval: attr.readInt32LE(4), ns: attr.readUInt32LE(36) };
}
