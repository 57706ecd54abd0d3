// Mounts and device nodes: mount(2), umount2(2), mknod(2). A sysfs mounted
// by a thread shows the network devices of that thread's network namespace
// (the mount is tagged with it), which is how a creator finds a device's
// char-device number in the namespace the device lives in.
import { libc, check } from './ffi.js';

export const MS_RDONLY = 1;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MS_NOEXEC = 8;
export const MNT_DETACH = 2;
export const S_IFCHR = 0o020000;

const mountFn = libc.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data)');
const umount2Fn = libc.func('int umount2(const char *target, int flags)');
const mknodFn = libc.func('int mknod(const char *path, unsigned int mode, unsigned long dev)');

/** mount(2) with no data. */
export function mount(source: string, target: string, fstype: string, flags: number): void {
  check(mountFn(source, target, fstype, flags, null) as number, `mount ${fstype} on ${target}`);
}

/** umount2(2). */
export function umount(target: string, flags = 0): void {
  check(umount2Fn(target, flags) as number, `unmount ${target}`);
}

/** glibc's makedev(3). */
export function makedev(major: number, minor: number): number {
  return Number((BigInt(major & 0xfff) << 8n) | BigInt(minor & 0xff) | (BigInt(minor & ~0xff) << 12n) | (BigInt(major & ~0xfff) << 32n));
}

/** mknod(2) of a character device node with permission bits perm (the umask applies). */
export function mknodChar(path: string, perm: number, major: number, minor: number): void {
  check(mknodFn(path, S_IFCHR | (perm & 0o7777), makedev(major, minor)) as number, `make device node ${path}`);
}
