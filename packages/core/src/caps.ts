// Capabilities and credentials (notes/node-syscalls.md §9).
//
// EVERYTHING HERE IS PER THREAD. capset, prctl (bounding set, ambient set,
// securebits, keepcaps, no_new_privs) and the raw setresuid/setresgid/
// setgroups system calls change only the calling thread: the main thread.
// Node's other threads (V8 workers, libuv's threadpool) keep full privilege
// and the old ids. So a privilege drop must be done synchronously and be
// followed by exec with no async work in between (no fs.promises, no
// dns.lookup, no awaiting anything): async work may run on a threadpool
// thread that still has every capability. After execve the process has one
// thread and the main thread's credentials are the process's.
//
// Masks are bigints: bit n = capability n (cap_net_admin = 12 -> 0x1000n).
import { readFileSync } from 'node:fs';
import { libc, check, rawSyscall } from './ffi.js';
import { SysError, UsageError } from './errors.js';

// ---------------------------------------------------------------- numbers

/** Capability names, index = number (kernel 6.x: 0..40). */
export const CAP_NAMES: readonly string[] = [
  'cap_chown', 'cap_dac_override', 'cap_dac_read_search', 'cap_fowner', 'cap_fsetid', 'cap_kill',
  'cap_setgid', 'cap_setuid', 'cap_setpcap', 'cap_linux_immutable', 'cap_net_bind_service',
  'cap_net_broadcast', 'cap_net_admin', 'cap_net_raw', 'cap_ipc_lock', 'cap_ipc_owner', 'cap_sys_module',
  'cap_sys_rawio', 'cap_sys_chroot', 'cap_sys_ptrace', 'cap_sys_pacct', 'cap_sys_admin', 'cap_sys_boot',
  'cap_sys_nice', 'cap_sys_resource', 'cap_sys_time', 'cap_sys_tty_config', 'cap_mknod', 'cap_lease',
  'cap_audit_write', 'cap_audit_control', 'cap_setfcap', 'cap_mac_override', 'cap_mac_admin', 'cap_syslog',
  'cap_wake_alarm', 'cap_block_suspend', 'cap_audit_read', 'cap_perfmon', 'cap_bpf', 'cap_checkpoint_restore',
];

export const CAP_CHOWN = 0;
export const CAP_DAC_OVERRIDE = 1;
export const CAP_SETGID = 6;
export const CAP_SETUID = 7;
export const CAP_SETPCAP = 8;
export const CAP_NET_BIND_SERVICE = 10;
export const CAP_NET_ADMIN = 12;
export const CAP_NET_RAW = 13;
export const CAP_SYS_PTRACE = 19;
export const CAP_SYS_ADMIN = 21;
export const CAP_SYS_RESOURCE = 24;

/** Highest capability number a 64-bit mask (two cap_data words) can hold. */
export const CAP_MAX = 63;

const byName = new Map<string, number>(CAP_NAMES.map((n, i) => [n, i]));

/** The mask bit of capability cap: 1n << cap. */
export function capBit(cap: number): bigint {
  return 1n << BigInt(cap);
}

/** The canonical name of a capability number: 12 -> "cap_net_admin"; unnamed ones are "cap_N". */
export function capName(cap: number): string {
  if (!Number.isInteger(cap) || cap < 0 || cap > CAP_MAX) throw new UsageError(`capability number out of range: ${cap}`);
  return CAP_NAMES[cap] ?? `cap_${cap}`;
}

/**
 * A capability number from a name, like setpriv: case-insensitive, with or
 * without the "cap_" prefix, or numeric ("cap_12", "12"). 0..63. Throws
 * UsageError for anything else.
 */
export function capNumber(name: string): number {
  const lower = name.toLowerCase();
  const bare = lower.startsWith('cap_') ? lower.slice(4) : lower;
  if (/^(0|[1-9][0-9]{0,2})$/.test(bare)) {
    const n = Number(bare);
    if (n <= CAP_MAX) return n;
  } else {
    const n = byName.get(`cap_${bare}`);
    if (n !== undefined) return n;
  }
  throw new UsageError(`unknown capability: ${JSON.stringify(name)}`);
}

/** A mask from capability numbers and/or names. */
export function capMask(caps: Iterable<number | string>): bigint {
  let m = 0n;
  for (const c of caps) {
    if (typeof c === 'number') checkCap(c);
    m |= capBit(typeof c === 'number' ? c : capNumber(c));
  }
  return m;
}

/**
 * Parse a comma-separated capability list ("net_admin,CAP_NET_RAW,12");
 * "" is the empty mask, "all" is every capability up to cap_last_cap.
 */
export function parseCapList(text: string): bigint {
  if (text === '') return 0n;
  if (text.toLowerCase() === 'all') return allCaps();
  return capMask(text.split(','));
}

/** The capability numbers in a mask, ascending. */
export function capsOf(mask: bigint): number[] {
  const out: number[] = [];
  for (let c = 0; c <= CAP_MAX; c++) if (mask & capBit(c)) out.push(c);
  return out;
}

/** The names of the capabilities in a mask, ascending. */
export function capNames(mask: bigint): string[] {
  return capsOf(mask).map(capName);
}

let lastCap: number | undefined;
/**
 * The highest capability the running kernel knows (/proc/sys/kernel/cap_last_cap;
 * without /proc, probed with PR_CAPBSET_READ).
 */
export function capLastCap(): number {
  if (lastCap !== undefined) return lastCap;
  try {
    lastCap = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'latin1').trim());
    if (!Number.isInteger(lastCap) || lastCap < 0 || lastCap > CAP_MAX) throw new Error('bad');
  } catch {
    let c = 0;
    while (c < CAP_MAX && prctl(PR_CAPBSET_READ, c + 1) >= 0) c++;
    lastCap = c;
  }
  return lastCap;
}

/** Every capability the kernel knows: bits 0..cap_last_cap. */
export function allCaps(): bigint {
  return capBit(capLastCap() + 1) - 1n;
}

// ---------------------------------------------------------------- capget/capset

const _LINUX_CAPABILITY_VERSION_3 = 0x20080522;
// The header {u32 version; int pid} and two cap_data {u32 effective,
// permitted, inheritable} (caps 0-31, 32-63) are plain Buffers, so the
// kernel always has room for the two structs it writes (§3 out-array pitfall).
const capgetFn = libc.func('int capget(void *hdr, void *data)');
const capsetFn = libc.func('int capset(void *hdr, const void *data)');

function capHeader(): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32LE(_LINUX_CAPABILITY_VERSION_3, 0);
  h.writeInt32LE(0, 4); // pid 0: the calling thread
  return h;
}

/** The three capability sets of the calling thread. */
export interface CapSets {
  effective: bigint;
  permitted: bigint;
  inheritable: bigint;
}

/** capget(2) for the calling thread. */
export function capGet(): CapSets {
  const hdr = capHeader();
  const data = Buffer.alloc(24);
  check(capgetFn(hdr, data) as number, 'get capabilities');
  const word = (i: number, off: number) => BigInt(data.readUInt32LE(12 * i + off));
  return {
    effective: word(0, 0) | (word(1, 0) << 32n),
    permitted: word(0, 4) | (word(1, 4) << 32n),
    inheritable: word(0, 8) | (word(1, 8) << 32n),
  };
}

/** capset(2) for the calling thread. Raising beyond permitted fails with EPERM. */
export function capSet(sets: CapSets): void {
  const hdr = capHeader();
  const data = Buffer.alloc(24);
  const put = (mask: bigint, off: number) => {
    data.writeUInt32LE(Number(mask & 0xffffffffn), off);
    data.writeUInt32LE(Number((mask >> 32n) & 0xffffffffn), 12 + off);
  };
  put(sets.effective, 0);
  put(sets.permitted, 4);
  put(sets.inheritable, 8);
  check(capsetFn(hdr, data) as number, 'set capabilities');
}

/**
 * Run fn with the capabilities in `caps` raised into the effective set (they
 * must be permitted, else SysError EPERM), then put the effective set back
 * as it was (restricted to what is still permitted), also when fn throws.
 * fn must be synchronous: the raise is on this thread only.
 */
export function withEffective<T>(caps: bigint, fn: () => T): T {
  const saved = capGet();
  if ((saved.effective | caps) !== saved.effective) capSet({ ...saved, effective: saved.effective | caps });
  try {
    return fn();
  } finally {
    const now = capGet();
    const eff = saved.effective & now.permitted;
    if (now.effective !== eff) capSet({ ...now, effective: eff });
  }
}

// ---------------------------------------------------------------- prctl

const PR_GET_KEEPCAPS = 7;
const PR_SET_KEEPCAPS = 8;
const PR_CAPBSET_READ = 23;
const PR_CAPBSET_DROP = 24;
const PR_GET_SECUREBITS = 27;
const PR_SET_SECUREBITS = 28;
const PR_SET_NO_NEW_PRIVS = 38;
const PR_GET_NO_NEW_PRIVS = 39;
const PR_CAP_AMBIENT = 47;
const PR_CAP_AMBIENT_IS_SET = 1;
const PR_CAP_AMBIENT_RAISE = 2;
const PR_CAP_AMBIENT_LOWER = 3;
const PR_CAP_AMBIENT_CLEAR_ALL = 4;

/** securebits (linux/securebits.h). */
export const SECBIT_NOROOT = 1 << 0;
export const SECBIT_NOROOT_LOCKED = 1 << 1;
export const SECBIT_NO_SETUID_FIXUP = 1 << 2;
export const SECBIT_NO_SETUID_FIXUP_LOCKED = 1 << 3;
export const SECBIT_KEEP_CAPS = 1 << 4;
export const SECBIT_KEEP_CAPS_LOCKED = 1 << 5;
export const SECBIT_NO_CAP_AMBIENT_RAISE = 1 << 6;
export const SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED = 1 << 7;

const prctlFn = libc.func('int prctl(int option, ...)');

/** prctl(2) with every unused argument 0 (several options insist). Returns the raw result. */
function prctl(option: number, a2 = 0, a3 = 0, a4 = 0, a5 = 0): number {
  return prctlFn(option, 'unsigned long', a2, 'unsigned long', a3, 'unsigned long', a4, 'unsigned long', a5) as number;
}

function checkCap(cap: number): void {
  if (!Number.isInteger(cap) || cap < 0 || cap > CAP_MAX) throw new UsageError(`capability number out of range: ${cap}`);
}

/** Is cap in the calling thread's bounding set? (EINVAL past cap_last_cap.) */
export function boundingHas(cap: number): boolean {
  checkCap(cap);
  return check(prctl(PR_CAPBSET_READ, cap), `read bounding set for ${capName(cap)}`) === 1;
}

/** The whole bounding set as a mask. */
export function boundingSet(): bigint {
  let m = 0n;
  for (let c = 0; c <= capLastCap(); c++) if (boundingHas(c)) m |= capBit(c);
  return m;
}

/** Drop cap from the bounding set (needs CAP_SETPCAP in effective, else EPERM). */
export function boundingDrop(cap: number): void {
  checkCap(cap);
  check(prctl(PR_CAPBSET_DROP, cap), `drop ${capName(cap)} from the bounding set`);
}

/** Is cap in the ambient set? */
export function ambientHas(cap: number): boolean {
  checkCap(cap);
  return check(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap), `read ambient set for ${capName(cap)}`) === 1;
}

/** The whole ambient set as a mask. */
export function ambientSet(): bigint {
  let m = 0n;
  for (let c = 0; c <= capLastCap(); c++) if (ambientHas(c)) m |= capBit(c);
  return m;
}

/** Raise cap into the ambient set (it must be permitted and inheritable, else EPERM). */
export function ambientRaise(cap: number): void {
  checkCap(cap);
  check(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap), `raise ambient ${capName(cap)}`);
}

/** Lower cap in the ambient set. */
export function ambientLower(cap: number): void {
  checkCap(cap);
  check(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, cap), `lower ambient ${capName(cap)}`);
}

/** Empty the ambient set. */
export function ambientClear(): void {
  check(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL), 'clear the ambient set');
}

/** The calling thread's securebits (SECBIT_*). */
export function getSecurebits(): number {
  return check(prctl(PR_GET_SECUREBITS), 'get securebits');
}

/** Set securebits (needs CAP_SETPCAP; locked bits cannot change: EPERM). */
export function setSecurebits(bits: number): void {
  check(prctl(PR_SET_SECUREBITS, bits), 'set securebits');
}

/** Is no_new_privs set? */
export function getNoNewPrivs(): boolean {
  return check(prctl(PR_GET_NO_NEW_PRIVS), 'get no_new_privs') === 1;
}

/** Set no_new_privs (irreversible; inherited across fork and exec). */
export function setNoNewPrivs(): void {
  check(prctl(PR_SET_NO_NEW_PRIVS, 1), 'set no_new_privs');
}

/** Is the keep-capabilities flag (SECBIT_KEEP_CAPS) set? */
export function getKeepCaps(): boolean {
  return check(prctl(PR_GET_KEEPCAPS), 'get keepcaps') === 1;
}

/** PR_SET_KEEPCAPS: keep permitted capabilities across a change from uid 0. Reset by exec. */
export function setKeepCaps(on: boolean): void {
  check(prctl(PR_SET_KEEPCAPS, on ? 1 : 0), `${on ? 'set' : 'clear'} keepcaps`);
}

// ---------------------------------------------------------------- ids (raw, this thread only)

function checkId(id: number, what: string, allowUnchanged: boolean): void {
  const ok = Number.isInteger(id) && ((id >= 0 && id < 0xffffffff) || (allowUnchanged && id === -1));
  if (!ok) throw new UsageError(`${what}: bad id ${id}`);
}

/**
 * setresuid(2) as a raw system call: changes the calling thread only (glibc's
 * wrapper would broadcast to every thread). -1 leaves an id unchanged.
 */
export function setresuid(ruid: number, euid: number, suid: number): void {
  for (const id of [ruid, euid, suid]) checkId(id, 'setresuid', true);
  rawSyscall('setresuid', `set uid to ${ruid}/${euid}/${suid}`, ruid, euid, suid);
}

/** setresgid(2) as a raw system call on the calling thread. -1 leaves an id unchanged. */
export function setresgid(rgid: number, egid: number, sgid: number): void {
  for (const id of [rgid, egid, sgid]) checkId(id, 'setresgid', true);
  rawSyscall('setresgid', `set gid to ${rgid}/${egid}/${sgid}`, rgid, egid, sgid);
}

/** setgroups(2) as a raw system call on the calling thread; [] clears the supplementary groups. */
export function setgroups(gids: readonly number[]): void {
  for (const g of gids) checkId(g, 'setgroups', false);
  const buf = Buffer.alloc(4 * gids.length);
  gids.forEach((g, i) => buf.writeUInt32LE(g, 4 * i));
  rawSyscall('setgroups', `set groups to [${gids.join(',')}]`, gids.length, gids.length ? buf : null);
}

// ---------------------------------------------------------------- the drop

/** The ids dropTo switches to. */
export interface DropIds {
  uid: number;
  gid: number;
  /** Supplementary groups; [] clears them. */
  groups: readonly number[];
}

/**
 * Leave the calling thread with exactly the capabilities in `keep` in its
 * effective, permitted, inheritable, bounding and ambient sets, optionally
 * under other ids, and no_new_privs set (notes §9, keep-only-X sequence):
 *
 *   0. check keep is permitted (SysError EPERM naming the missing ones);
 *   1. with ids: PR_SET_KEEPCAPS 1, raw setgroups, setresgid, setresuid;
 *   2. capset effective = permitted (re-raised after the uid change);
 *   3. PR_CAPBSET_DROP every capability 0..cap_last_cap not kept (only those
 *      still in the bounding set, so an already-small bounding set needs no
 *      CAP_SETPCAP);
 *   4. capset {effective, permitted, inheritable} = keep;
 *   5. PR_CAP_AMBIENT_CLEAR_ALL, then raise each kept capability;
 *   6. PR_SET_NO_NEW_PRIVS.
 *
 * PER THREAD: only the calling (main) thread is changed; Node's other
 * threads keep every privilege. This MUST be followed by exec, synchronously,
 * with no async work in between. The ambient set carries `keep` across that
 * exec also for a non-root uid. Irreversible: run it in the process that is
 * about to exec.
 */
export function dropTo(keep: bigint, ids?: DropIds): void {
  const last = capLastCap();
  const start = capGet();
  const missing = keep & ~start.permitted;
  if (missing !== 0n) throw new SysError(`keep ${capNames(missing).join(',')}`, 1 /* EPERM */);
  if (ids) {
    checkId(ids.uid, 'uid', false);
    checkId(ids.gid, 'gid', false);
    setKeepCaps(true);
    setgroups(ids.groups);
    setresgid(ids.gid, ids.gid, ids.gid);
    setresuid(ids.uid, ids.uid, ids.uid);
  }
  const now = capGet();
  capSet({ effective: now.permitted, permitted: now.permitted, inheritable: now.inheritable });
  for (let c = 0; c <= last; c++) {
    if (!(keep & capBit(c)) && boundingHas(c)) boundingDrop(c);
  }
  capSet({ effective: keep, permitted: keep, inheritable: keep });
  ambientClear();
  for (const c of capsOf(keep)) ambientRaise(c);
  setNoNewPrivs();
  if (ids) setKeepCaps(false);
}
